#!/usr/bin/env python3
"""The `ollama` Python client against the real freellmapi binary's Ollama listener and a mock
provider: list, show, ps, chat (streamed and whole, a tool round trip with a Python function
as the tool), generate, embed and embeddings, and a missing model as `ResponseError` 404.

Usage: ollama_check.py path/to/freellmapi
Prints "N passed, N failed".
"""

import os
import sys

os.environ["FREELLMAPI_OLLAMA_LISTEN"] = "127.0.0.1:0"

import ollama  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy  # noqa: E402
from mock_provider import SEEN  # noqa: E402

GROQ = "openai/gpt-oss-20b"


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
      city: The city
    """
    return f"20 degrees in {city}"


def main():
    with Proxy(sys.argv[1]) as proxy:
        assert proxy.ollama_addr, "no Ollama listener"
        client = ollama.Client(host=f"http://{proxy.ollama_addr}")

        def listing():
            names = [m.model for m in client.list().models]
            assert names[0] == "auto:latest", names[:3]
            assert f"{GROQ}:latest" in names, names
            shown = client.show(f"{GROQ}:latest")
            assert "completion" in shown.capabilities and "tools" in shown.capabilities, shown.capabilities
            assert shown.modelinfo["freellmapi.context_length"] > 0, shown.modelinfo
            assert client.ps().models == []

        def chat_stream():
            parts = list(client.chat(model=f"{GROQ}:latest", messages=[{"role": "user", "content": "hi"}], stream=True))
            assert "".join(p.message.content for p in parts) == "Hello from the mock", parts
            assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count > 0, parts[-1]

        def chat_tools():
            messages = [{"role": "user", "content": "Weather in Paris?"}]
            first = client.chat(model=GROQ, messages=messages, tools=[get_weather])
            call = first.message.tool_calls[0]
            assert call.function.name == "get_weather" and call.function.arguments == {"city": "Paris"}, call
            messages += [first.message, {"role": "tool", "content": get_weather(**call.function.arguments), "tool_name": "get_weather"}]
            second = client.chat(model=GROQ, messages=messages, tools=[get_weather])
            assert second.message.content == "The tool said 20 degrees in Paris", second.message
            sent = SEEN[-1][2]["messages"]
            assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == sent[-2]["tool_calls"][0]["id"], sent[-2:]

        def generate():
            out = client.generate(model=GROQ, prompt="Say hi")
            assert out.response == "Hello from the mock" and out.done, out
            streamed = "".join(p.response for p in client.generate(model=GROQ, prompt="Say hi", stream=True))
            assert streamed == "Hello from the mock", streamed

        def embed():
            out = client.embed(model="mistral-embed", input=["one", "two"])
            assert [e[:2] for e in out.embeddings] == [[1.0, 1.5], [2.0, 2.5]], out.embeddings
            old = client.embeddings(model="mistral-embed:latest", prompt="one")
            assert list(old.embedding) == [1.0, 1.5, 0.25, -1.0], old

        def missing():
            try:
                client.chat(model="llama9:latest", messages=[{"role": "user", "content": "x"}])
            except ollama.ResponseError as e:
                assert e.status_code == 404 and "llama9" in e.error, (e.status_code, e.error)
                return
            raise AssertionError("an unknown model was served")

        for name, fn in [("list, show, ps", listing), ("chat stream", chat_stream), ("chat tool round trip", chat_tools),
                         ("generate (whole and streamed)", generate), ("embed and embeddings", embed),
                         ("unknown model", missing)]:
            proxy.check(name, fn)


if __name__ == "__main__":
    main()
