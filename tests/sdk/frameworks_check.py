#!/usr/bin/env python3
"""What frameworks send by default, with the real packages, against the real freellmapi binary
and a mock provider.

Usage: frameworks_check.py path/to/freellmapi path/to/vocab-dir

LangChain's OpenAIEmbeddings tokenizes with tiktoken and sends token ids by default; the
server turns them back into text with the vocabulary in vocab-dir (cross/vocab.sh), and the
provider must see the very texts LangChain was given. tiktoken reads the same verified file
from its cache, so nothing is downloaded. LangChain's OpenAI(...).batch sends one prompt array.
Prints "N passed, N failed".
"""

import atexit
import hashlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy  # noqa: E402
from mock_provider import SEEN  # noqa: E402

GROQ = "openai/gpt-oss-20b"
TEXTS = ["hello world", "Grüße aus Zürich — 東京 🙂", "a longer passage about routers and keys " * 8]


def texts_sent():
    """The texts of the last embeddings call, whichever wire the alias reached."""
    path, _, body = SEEN[-1]
    if ":batchEmbedContents" in path:
        return [r["content"]["parts"][0]["text"] for r in body["requests"]]
    return body["input"] if isinstance(body["input"], list) else [body["input"]]


def main():
    binary, vocab = sys.argv[1], os.path.abspath(sys.argv[2])
    os.environ["FREELLMAPI_VOCAB_DIR"] = vocab
    # tiktoken's cache is keyed by the SHA-1 of the file's URL; seed it with the same file.
    cache = tempfile.mkdtemp(prefix="tiktoken-")
    atexit.register(shutil.rmtree, cache, True)
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    shutil.copy(os.path.join(vocab, "cl100k_base.tiktoken"), os.path.join(cache, hashlib.sha1(url.encode()).hexdigest()))
    os.environ["TIKTOKEN_CACHE_DIR"] = cache

    from langchain_openai import ChatOpenAI, OpenAI, OpenAIEmbeddings

    with Proxy(binary) as proxy:
        base = f"http://{proxy.addr}/v1"

        def embeddings_default():
            emb = OpenAIEmbeddings(model="text-embedding-3-small", base_url=base, api_key=proxy.token, max_retries=0)
            vectors = emb.embed_documents(TEXTS)
            assert len(vectors) == 3 and all(len(v) == 4 for v in vectors), vectors
            assert texts_sent() == TEXTS, texts_sent()
            query = emb.embed_query("hello world")
            assert len(query) == 4 and texts_sent() == ["hello world"], texts_sent()

        def structured():
            from pydantic import BaseModel

            class Place(BaseModel):
                city: str

            llm = ChatOpenAI(model=GROQ, base_url=base, api_key=proxy.token, max_retries=0)
            out = llm.with_structured_output(Place).invoke("Where is the Eiffel Tower?")
            assert out == Place(city="Paris"), out
            rf = SEEN[-1][2]["response_format"]
            assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["required"] == ["city"], rf

        def batch():
            llm = OpenAI(model=GROQ, base_url=base, api_key=proxy.token, max_retries=0, max_tokens=16)
            out = llm.batch(["one", "two", "three"])
            assert out == ["Hello from the mock"] * 3, out

        for name, fn in [("LangChain OpenAIEmbeddings with its default token ids", embeddings_default),
                         ("LangChain OpenAI(...).batch (a prompt array)", batch),
                         ("LangChain ChatOpenAI.with_structured_output (json_schema)", structured)]:
            proxy.check(name, fn)


if __name__ == "__main__":
    main()
