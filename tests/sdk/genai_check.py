#!/usr/bin/env python3
"""Google's `google-genai` SDK against the real freellmapi binary and a mock provider, with
its base URL set as a user would: model list, generate_content (plain, streamed, a tool round
trip with function calling, JSON schema output), count_tokens, embed_content, on both API
versions the SDK sends (`v1`, its default with a base URL, and `v1beta`), a `gemini-*` name
the catalog lacks, and a wrong key.

Usage: genai_check.py path/to/freellmapi
Prints "N passed, N failed".
"""

import os
import sys

from google import genai
from google.genai import errors, types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy  # noqa: E402
from mock_provider import SEEN  # noqa: E402

GROQ = "openai/gpt-oss-20b"


def main():
    with Proxy(sys.argv[1]) as proxy:
        base = f"http://{proxy.addr}"
        clients = {v: genai.Client(api_key=proxy.token, http_options=types.HttpOptions(base_url=base, api_version=v))
                   for v in ("v1", "v1beta")}
        client = genai.Client(api_key=proxy.token, http_options=types.HttpOptions(base_url=base))

        def listing():
            for c in [client, *clients.values()]:
                names = [m.name for m in c.models.list()]
                assert names[0] == "models/auto", names[:3]
                assert f"models/{GROQ}" in names, names
            one = client.models.get(model=GROQ)
            assert one.name == f"models/{GROQ}" and "generateContent" in one.supported_actions, one

        def generate():
            for c in clients.values():
                r = c.models.generate_content(model=GROQ, contents="Say hi")
                assert r.text == "Hello from the mock", r
                assert r.model_version == GROQ, r.model_version
                assert r.candidates[0].finish_reason == types.FinishReason.STOP
            assert SEEN[-1][0] == "/openai/v1/chat/completions", SEEN[-1][0]

        def stream():
            parts = [c.text or "" for c in client.models.generate_content_stream(model=GROQ, contents="Say hi")]
            assert "".join(parts) == "Hello from the mock", parts

        def alias():
            r = client.models.generate_content(model="gemini-3.1-pro-preview", contents="Say hi",
                                               config=types.GenerateContentConfig(system_instruction="Be brief."))
            assert r.text and r.model_version == "gemini-3.1-pro-preview", r
            # Routed by intelligence: whichever wire served, the instruction reached it.
            path, _, body = SEEN[-1]
            if "messages" in body:
                assert body["messages"][0] == {"role": "system", "content": "Be brief."}, body
            else:
                assert body["systemInstruction"]["parts"][0]["text"] == "Be brief.", (path, body)

        def tools():
            tool = types.Tool(function_declarations=[types.FunctionDeclaration(
                name="get_weather", description="Current weather for a city",
                parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)},
                                        required=["city"]))])
            config = types.GenerateContentConfig(tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
            first = client.models.generate_content(model=GROQ, contents="Weather in Paris?", config=config)
            call = first.function_calls[0]
            assert call.name == "get_weather" and call.args == {"city": "Paris"}, call
            sent_tool = SEEN[-1][2]["tools"][0]["function"]["parameters"]
            assert sent_tool["type"] == "object" and sent_tool["properties"]["city"]["type"] == "string", sent_tool
            contents = [
                types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")]),
                first.candidates[0].content,
                types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp": 20})]),
            ]
            second = client.models.generate_content(model=GROQ, contents=contents, config=config)
            assert second.text == 'The tool said {"temp":20}', second.text

        def json_schema():
            config = types.GenerateContentConfig(response_mime_type="application/json", response_schema={
                "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]})
            r = client.models.generate_content(model=GROQ, contents="Where is the Eiffel Tower?", config=config)
            assert r.parsed == {"city": "Paris"} or r.text == '{"city": "Paris"}', r.text
            rf = SEEN[-1][2]["response_format"]
            assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["type"] == "object", rf

        def count():
            n = client.models.count_tokens(model=GROQ, contents="a few words here")
            assert n.total_tokens > 0, n

        def embed():
            r = client.models.embed_content(model="mistral-embed", contents=["one", "two"])
            assert [e.values[:2] for e in r.embeddings] == [[1.0, 1.5], [2.0, 2.5]], r

        def wrong_key():
            bad = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=base))
            try:
                bad.models.generate_content(model=GROQ, contents="hi")
            except errors.ClientError as e:
                assert e.code == 401 and e.status == "UNAUTHENTICATED", (e.code, e.status)
                return
            raise AssertionError("a wrong key was served")

        for name, fn in [("model list (v1, v1beta) and get", listing), ("generate_content on v1 and v1beta", generate),
                         ("generate_content_stream", stream), ("a gemini-* alias with a system instruction", alias),
                         ("function calling round trip", tools), ("JSON schema output", json_schema),
                         ("count_tokens", count), ("embed_content", embed), ("wrong key", wrong_key)]:
            proxy.check(name, fn)


if __name__ == "__main__":
    main()
