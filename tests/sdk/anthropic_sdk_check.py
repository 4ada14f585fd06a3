#!/usr/bin/env python3
"""The official `anthropic` Python package against the real freellmapi binary and a mock provider.

Usage: anthropic_sdk_check.py path/to/freellmapi

Drives the Messages API as Claude Code's SDK does, through freellmapi to an OpenAI-compatible
mock: a plain message with a claude-* model name (routed by alias, echoed back), a stream read
with the SDK's accumulating helper, a two-turn tool round trip (streamed, arguments parsed by
the SDK), the beta endpoint, count_tokens, the model list and a wrong key. Prints
"N passed, N failed".
"""

import os
import json
import sys

import anthropic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy  # noqa: E402
from mock_provider import SEEN  # noqa: E402

# Routed by the default aliases: haiku-class names take the fastest model (Groq here).
MODEL = "claude-haiku-4-5"
TOOLS = [{
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                     "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def main():
    with Proxy(sys.argv[1]) as proxy:
        client = anthropic.Anthropic(base_url=f"http://{proxy.addr}", api_key=proxy.token, max_retries=0)

        def plain():
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=8000, system="Be brief.",
                                                           messages=[{"role": "user", "content": "hi"}])
            m = raw.parse()
            assert m.model == MODEL and m.role == "assistant", m
            assert m.content[0].text == "Hello from the mock" and m.stop_reason == "end_turn", m
            assert m.usage.input_tokens == 5 and m.usage.output_tokens == 4, m.usage
            assert raw.headers["x-routed-via"].startswith("groq/"), raw.headers
            sent = SEEN[-1][2]
            assert sent["messages"][0] == {"role": "system", "content": "Be brief."}, sent

        def stream():
            # Claude Code asks for up to 128 000 output tokens; the routed model allows 65 536.
            with client.messages.stream(model=MODEL, max_tokens=128000, messages=[{"role": "user", "content": "hi"}]) as s:
                text = "".join(s.text_stream)
                final = s.get_final_message()
            assert text == "Hello from the mock", text
            assert final.stop_reason == "end_turn" and final.content[0].text == text, final
            assert SEEN[-1][2]["max_tokens"] == 65536, SEEN[-1][2]["max_tokens"]

        def tools():
            messages = [{"role": "user", "content": "Weather in Paris?"}]
            with client.messages.stream(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages) as s:
                first = s.get_final_message()
            use = next(b for b in first.content if b.type == "tool_use")
            assert first.stop_reason == "tool_use", first
            assert use.name == "get_weather" and use.input == {"city": "Paris"}, use
            messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
            messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "20C and sunny"}]})
            second = client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages)
            assert second.content[0].text == "The tool said 20C and sunny", second
            sent = SEEN[-1][2]
            assert sent["messages"][-1] == {"role": "tool", "tool_call_id": use.id, "content": "20C and sunny"}, sent

        def beta():
            m = client.beta.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}],
                                            betas=["interleaved-thinking-2025-05-14"])
            assert m.content[0].text == "Hello from the mock", m

        def structured_output():
            # What LangChain's with_structured_output and pydantic-ai send on Claude models.
            schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                      "additionalProperties": False}
            m = client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Where?"}],
                                       output_config={"format": {"type": "json_schema", "schema": schema}})
            assert json.loads(m.content[0].text) == {"city": "Paris"}, m
            sent = SEEN[-1][2]["response_format"]
            assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["required"] == ["city"], sent
            with client.messages.stream(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Where?"}],
                                        output_config={"format": {"type": "json_schema", "schema": schema}}) as s:
                assert json.loads("".join(s.text_stream)) == {"city": "Paris"}
            assert SEEN[-1][2]["response_format"]["type"] == "json_schema"

        def count_tokens():
            before = len(SEEN)
            n = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "12345678"}], tools=TOOLS)
            assert n.input_tokens > 2, n
            assert len(SEEN) == before, "count_tokens made an upstream call"

        def models():
            page = client.models.list()
            ids = [m.id for m in page.data]
            assert ids[0] == "auto" and "openai/gpt-oss-20b" in ids, ids[:5]
            assert all(m.type == "model" and m.display_name for m in page.data)

        def wrong_key():
            bad = anthropic.Anthropic(base_url=f"http://{proxy.addr}", api_key="freellmapi-" + "0" * 48, max_retries=0)
            try:
                bad.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
            except anthropic.AuthenticationError as e:
                assert e.status_code == 401 and e.body["error"]["type"] == "authentication_error", e.body
                return
            raise AssertionError("a wrong key was accepted")

        for name, fn in [("message", plain), ("stream", stream), ("streamed tool round trip", tools), ("beta endpoint", beta),
                         ("structured output (output_config)", structured_output),
                         ("count_tokens", count_tokens), ("model list", models), ("wrong key", wrong_key)]:
            proxy.check(name, fn)


if __name__ == "__main__":
    main()
