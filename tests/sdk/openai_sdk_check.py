#!/usr/bin/env python3
"""The official `openai` Python package against the real freellmapi binary and a mock provider.

Usage: openai_sdk_check.py path/to/freellmapi

Starts a mock OpenAI-compatible upstream on loopback, starts freellmapi pointed at it, adds a
key through the CLI (stdin), then drives the SDK: model list, a non-streaming completion, a
streamed completion, a two-turn tool call, and a wrong key. Prints "N passed, N failed".
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

import openai

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_provider import SEEN, start  # noqa: E402

GROQ = "llama-3.3-70b-versatile"

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def main():
    binary = os.path.abspath(sys.argv[1])
    mock = start()
    data = tempfile.mkdtemp(prefix="freellmapi-sdk-")
    port = mock.server_address[1]
    env = dict(os.environ, FREELLMAPI_UPSTREAM_GROQ=f"http://127.0.0.1:{port}/openai/v1",
               FREELLMAPI_UPSTREAM_GOOGLE=f"http://127.0.0.1:{port}/v1beta")
    cli = lambda *args, stdin="": subprocess.run([binary, *args, "--data-dir", data], input=stdin, env=env, capture_output=True, text=True, check=True)
    cli("keys", "add", "groq", "--label", "sdk", stdin="gsk_sdk_check_key\n")
    cli("keys", "add", "google", "--label", "sdk", stdin="AIzaSdkCheckKey\n")
    server = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    results = []
    try:
        addr = None
        for line in server.stderr:
            m = re.search(r"listening on http://(\S+)", line)
            if m:
                addr = m.group(1)
                break
        assert addr, "the server did not start"
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        token = cli("token").stdout.strip()
        client = openai.OpenAI(base_url=f"http://{addr}/v1", api_key=token, max_retries=0)

        def check(name, fn):
            try:
                fn()
                results.append((name, None))
                print(f"ok   {name}")
            except Exception as e:  # noqa: BLE001 - report every failure and keep going
                results.append((name, e))
                print(f"FAIL {name}: {e!r}")

        def models():
            ids = [m.id for m in client.models.list()]
            assert ids[0] == "auto", ids[:3]
            assert "llama-3.3-70b-versatile" in ids

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
            s = client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], stream=True)
            for c in s:
                if c.choices and c.choices[0].delta.content:
                    parts.append(c.choices[0].delta.content)
            assert "".join(parts) == "Hello from Gemini", parts
            path, headers, _ = SEEN[-1]
            assert path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", path
            assert headers["x-goog-api-key"] == "AIzaSdkCheckKey" and "key=" not in path

        def gemini_tools():
            messages = [{"role": "user", "content": "Weather in Paris?"}]
            stream = client.chat.completions.create(model="gemini-2.5-flash", messages=messages, tools=TOOLS, stream=True)
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
            for c in client.chat.completions.create(model="gemini-2.5-flash", messages=messages, tools=TOOLS, stream=True):
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

        for name, fn in [("model list", models), ("non-stream", non_stream), ("stream", stream), ("tool round trip", tools),
                         ("streamed tool call", stream_tools), ("gemini stream", gemini_stream),
                         ("gemini streamed tool round trip", gemini_tools), ("wrong key", wrong_key)]:
            check(name, fn)
    finally:
        server.terminate()
        code = server.wait(timeout=20)
        mock.shutdown()
        shutil.rmtree(data, ignore_errors=True)
    results.append(("clean shutdown", None if code == 0 else AssertionError(f"exit code {code}")))
    failed = sum(1 for _, e in results if e)
    print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
