#!/usr/bin/env python3
"""The official `openai` Python package against the real freellmapi binary and a mock provider.

Usage: openai_sdk_check.py path/to/freellmapi

Starts a mock provider on loopback, starts freellmapi pointed at it with keys added through
the CLI (stdin), then drives the SDK: model list, chat (plain, streamed, tool round trips, via
Gemini), a wrong key, Responses (plain, streamed, tool round trip, stateless refusal), legacy
completions (plain, streamed, fill-in-the-middle), embeddings (the SDK's default base64,
float) and audio transcriptions (whisper-1 with a file opened from disk: json, text, srt and
verbose_json). Prints "N passed, N failed".
"""

import base64
import json
import os
import struct
import sys
import tempfile

import openai

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy  # noqa: E402
from mock_provider import SEEN  # noqa: E402

GROQ = "openai/gpt-oss-20b"
EMBED = "mistral-embed"

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def main():
    with Proxy(sys.argv[1]) as proxy:
        addr, check = proxy.addr, proxy.check
        client = openai.OpenAI(base_url=f"http://{addr}/v1", api_key=proxy.token, max_retries=0)

        def models():
            ids = [m.id for m in client.models.list()]
            assert ids[0] == "auto", ids[:3]
            assert "openai/gpt-oss-20b" in ids

        def non_stream():
            raw = client.chat.completions.with_raw_response.create(model=GROQ, messages=[{"role": "user", "content": "hi"}])
            done = raw.parse()
            assert done.choices[0].message.content == "Hello from the mock", done
            assert done.usage.total_tokens == 9
            assert raw.headers["x-routed-via"] == f"groq/{GROQ}", raw.headers
            path, headers, body = SEEN[-1]
            assert path == "/openai/v1/chat/completions", path
            assert headers["authorization"] == "Bearer gsk_sdk_check_key"
            assert body["model"] == GROQ
            auto = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
            assert auto.choices[0].message.content

        def stream():
            parts = []
            with client.chat.completions.create(model=GROQ, messages=[{"role": "user", "content": "hi"}], stream=True) as s:
                for c in s:
                    if c.choices and c.choices[0].delta.content:
                        parts.append(c.choices[0].delta.content)
            assert "".join(parts) == "Hello from the mock", parts
            assert len(parts) >= 3, "tokens arrive as separate frames"

        def tools():
            messages = [{"role": "user", "content": "Weather in Paris?"}]
            first = client.chat.completions.create(model=GROQ, messages=messages, tools=TOOLS, tool_choice="auto")
            call = first.choices[0].message.tool_calls[0]
            assert first.choices[0].finish_reason == "tool_calls"
            assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
            messages.append(first.choices[0].message.model_dump(exclude_none=True))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "20C and sunny"})
            second = client.chat.completions.create(model=GROQ, messages=messages, tools=TOOLS)
            assert second.choices[0].message.content == "The tool said 20C and sunny"
            assert SEEN[-1][2]["messages"][-1]["tool_call_id"] == "call_1"

        def stream_tools():
            s = client.chat.completions.create(model=GROQ, messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, stream=True)
            calls = [tc for c in s if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
            assert calls and calls[0].function.name == "get_weather", calls

        def gemini_stream():
            parts = []
            s = client.chat.completions.create(model="gemini-3.8-flash", messages=[{"role": "user", "content": "hi"}], stream=True)
            for c in s:
                if c.choices and c.choices[0].delta.content:
                    parts.append(c.choices[0].delta.content)
            assert "".join(parts) == "Hello from Gemini", parts
            path, headers, _ = SEEN[-1]
            assert path == "/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse", path
            assert headers["x-goog-api-key"] == "AIzaSdkCheckKey" and "key=" not in path

        def gemini_tools():
            messages = [{"role": "user", "content": "Weather in Paris?"}]
            stream = client.chat.completions.create(model="gemini-3.8-flash", messages=messages, tools=TOOLS, stream=True)
            calls = {}
            for c in stream:
                for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                    calls.setdefault(tc.index, tc.model_dump(exclude_none=True))
            call = calls[0]
            assert call["function"]["name"] == "get_weather", call
            assert call.get("thought_signature") == "SIG_PY", call
            call.pop("index")
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"temp": 21})})
            parts = []
            for c in client.chat.completions.create(model="gemini-3.8-flash", messages=messages, tools=TOOLS, stream=True):
                if c.choices and c.choices[0].delta.content:
                    parts.append(c.choices[0].delta.content)
            assert "".join(parts) == "Gemini says 21 degrees", parts

        def wrong_key():
            bad = openai.OpenAI(base_url=f"http://{addr}/v1", api_key="freellmapi-" + "0" * 48, max_retries=0)
            try:
                bad.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
            except openai.AuthenticationError as e:
                assert e.status_code == 401
                return
            raise AssertionError("a wrong key was accepted")

        def responses_plain():
            r = client.responses.create(model=GROQ, instructions="Be brief.", input="hi")
            assert r.output_text == "Hello from the mock", r
            assert r.status == "completed" and r.usage.total_tokens == 9, r
            body = SEEN[-1][2]
            assert body["messages"][0] == {"role": "system", "content": "Be brief."}, body

        def responses_stream():
            kinds, text = [], []
            with client.responses.stream(model=GROQ, input=[{"role": "developer", "content": "sys"}, {"role": "user", "content": "hi"}]) as s:
                for event in s:
                    kinds.append(event.type)
                    if event.type == "response.output_text.delta":
                        text.append(event.delta)
                final = s.get_final_response()
            assert "".join(text) == "Hello from the mock", text
            assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
            assert final.output_text == "Hello from the mock", final

        def responses_tools():
            tools = [{"type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}, {"type": "web_search"}]
            raw = client.responses.with_raw_response.create(model=GROQ, input="Weather in Paris?", tools=tools)
            assert raw.headers["x-freellmapi-dropped-tools"] == "web_search", raw.headers
            first = raw.parse()
            call = next(o for o in first.output if o.type == "function_call")
            assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}, call
            follow = [{"role": "user", "content": "Weather in Paris?"}, call.model_dump(exclude_none=True),
                      {"type": "function_call_output", "call_id": call.call_id, "output": "20C and sunny"}]
            second = client.responses.create(model=GROQ, input=follow, tools=tools[:1])
            assert second.output_text == "The tool said 20C and sunny", second

        def responses_stateless():
            try:
                client.responses.create(model=GROQ, input="more", previous_response_id="resp_1")
            except openai.BadRequestError as e:
                assert "stateless" in str(e), e
                return
            raise AssertionError("previous_response_id was accepted")

        def completions():
            c = client.completions.create(model=GROQ, prompt="Say hi", max_tokens=8)
            assert c.choices[0].text == "Hello from the mock", c
            parts = [x.choices[0].text for x in client.completions.create(model=GROQ, prompt="Say hi", stream=True) if x.choices]
            assert "".join(parts) == "Hello from the mock", parts

        def completions_fim():
            c = client.completions.create(model="codestral-latest", prompt="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))", max_tokens=16)
            assert c.choices[0].text == "return a + b", c
            path, _, body = SEEN[-1]
            assert path == "/mistral/v1/fim/completions" and body["suffix"] == "\n\nprint(add(1, 2))", (path, body)

        def embeddings():
            default = client.embeddings.create(model=EMBED, input=["one", "two words"])
            assert [len(d.embedding) for d in default.data] == [4, 4], default
            assert default.data[1].embedding[1] == 2.5, default.data[1].embedding
            assert SEEN[-1][0] == "/mistral/v1/embeddings", SEEN[-1][0]
            floats = client.embeddings.create(model=EMBED, input="one", encoding_format="float")
            assert floats.data[0].embedding == [1.0, 1.5, 0.25, -1.0], floats
            raw = client.embeddings.with_raw_response.create(model=EMBED, input="one", encoding_format="base64").http_response.json()
            vector = struct.unpack("<4f", base64.b64decode(raw["data"][0]["embedding"]))
            assert vector == (1.0, 1.5, 0.25, -1.0), vector
            assert default.usage.prompt_tokens > 0

        def transcriptions():
            audio = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"
            with tempfile.NamedTemporaryFile(suffix=".wav") as f:
                f.write(audio)
                f.flush()
                with open(f.name, "rb") as file:
                    t = client.audio.transcriptions.create(model="whisper-1", file=file)
                assert t.text == f"Heard {len(audio)} bytes", t
                path, headers, seen = SEEN[-1]
                assert path == "/openai/v1/audio/transcriptions", path
                assert headers["authorization"] == "Bearer gsk_sdk_check_key"
                assert seen["model"] == "whisper-large-v3-turbo" and seen["response_format"] == "json", seen
                filename, sent = seen["file"]
                assert sent == audio and filename.endswith(".wav"), (filename, len(sent))
                with open(f.name, "rb") as file:
                    text = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="text",
                                                              language="en", prompt="Groq")
                assert text.strip() == f"Heard {len(audio)} bytes", repr(text)
                assert SEEN[-1][2]["language"] == "en" and SEEN[-1][2]["prompt"] == "Groq", SEEN[-1][2]
                with open(f.name, "rb") as file:
                    srt = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="srt")
                assert srt.startswith("1\n00:00:00,000 --> 00:00:01,500\nHeard"), repr(srt)
                with open(f.name, "rb") as file:
                    verbose = client.audio.transcriptions.create(model="whisper-large-v3", file=file,
                                                                 response_format="verbose_json")
                assert verbose.duration == 1.5 and verbose.segments[0].end == 1.5, verbose
                assert SEEN[-1][2]["model"] == "whisper-large-v3"
                try:
                    with open(f.name, "rb") as file:
                        client.audio.transcriptions.create(model="gpt-oss-120b", file=file)
                    raise AssertionError("a chat model transcribed")
                except openai.BadRequestError as e:
                    assert e.code == "model_not_found" and "/v1/audio/transcriptions" in e.message, e.message

        for name, fn in [("model list", models), ("non-stream", non_stream), ("stream", stream), ("tool round trip", tools),
                         ("streamed tool call", stream_tools), ("gemini stream", gemini_stream),
                         ("gemini streamed tool round trip", gemini_tools), ("wrong key", wrong_key),
                         ("responses", responses_plain), ("responses stream", responses_stream),
                         ("responses tool round trip", responses_tools), ("responses stateless", responses_stateless),
                         ("completions", completions), ("completions with suffix (FIM)", completions_fim),
                         ("embeddings (default base64, float, raw base64)", embeddings),
                         ("audio transcriptions (whisper-1: json, text, srt, verbose_json)", transcriptions)]:
            check(name, fn)


if __name__ == "__main__":
    main()
