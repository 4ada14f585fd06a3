#!/usr/bin/env python3
"""A mock LLM provider on loopback for the SDK check and the ARM smoke test.

Speaks the OpenAI chat API (JSON and SSE, with a two-turn tool flow), embeddings (input i gets
[1+i, 1.5+i, 0.25, -1]), audio transcriptions (a multipart upload, answered with the size of
the file it received), Mistral's fill-in-the-middle and Gemini's generateContent /
streamGenerateContent (text, and a tool call carrying a thought signature that must come back
on the next turn) and batchEmbedContents. Records every request in SEEN.

As a program: `mock_provider.py PORTFILE [--tls]` serves on a free port and writes it to
PORTFILE; with --tls it speaks HTTPS with the test certificate in tests/tls (for `localhost`,
signed by tests/tls/ca.pem).
"""

import json
import re
import sys
import time
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = []


def chunk(delta, finish=None):
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "mock",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def answer(body):
    """The mock provider's reply for one request body: a list of chunks (streams) or one dict."""
    messages = body["messages"]
    last = messages[-1]
    if body.get("tools") and last["role"] != "tool":
        call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    if last["role"] == "tool":
        return {"role": "assistant", "content": f"The tool said {last['content']}"}, "stop"
    if (body.get("response_format") or {}).get("type") == "json_schema":
        # A provider honouring the schema: an object with a string for each required field.
        schema = body["response_format"]["json_schema"]["schema"]
        return {"role": "assistant", "content": json.dumps({k: "Paris" for k in schema.get("required", [])})}, "stop"
    return {"role": "assistant", "content": "Hello from the mock"}, "stop"


def gemini_answer(body):
    """The mock Gemini reply: candidate parts for one generateContent body."""
    contents = body["contents"]
    last = contents[-1]["parts"]
    responses = [p["functionResponse"] for p in last if "functionResponse" in p]
    if responses:
        call_part = next(p for p in contents[-2]["parts"] if "functionCall" in p)
        if call_part.get("thoughtSignature") != "SIG_PY":
            return None
        return [{"text": f"Gemini says {responses[0]['response']['temp']} degrees"}]
    if body.get("tools"):
        return [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG_PY"}]
    return [{"text": w} for w in re.findall(r"\S+\s*", "Hello from Gemini")]


def form(content_type, raw):
    """A multipart/form-data body as {name: (filename, bytes)}."""
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    return {part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_payload(decode=True))
            for part in message.iter_parts()}


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def gemini(self, body):
        parts = gemini_answer(body)
        if parts is None:
            return self.send_json(400, {"error": {"code": 400, "message": "missing thought signature", "status": "INVALID_ARGUMENT"}})
        usage = {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}
        if ":streamGenerateContent" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, part in enumerate(parts):
                frame = {"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}]}
                if i == len(parts) - 1:
                    frame["candidates"][0]["finishReason"] = "STOP"
                    frame["usageMetadata"] = usage
                self.write_chunk(f"data: {json.dumps(frame)}\r\n\r\n".encode())
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_json(200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}], "usageMetadata": usage})

    def send_json(self, status, obj):
        payload = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def transcription(self, raw):
        fields = form(self.headers["Content-Type"], raw)
        seen = {name: value.decode() if filename is None else (filename, value) for name, (filename, value) in fields.items()}
        SEEN.append((self.path, {k.lower(): v for k, v in self.headers.items()}, seen))
        text = f"Heard {len(fields['file'][1])} bytes"
        if seen.get("response_format") == "verbose_json":
            segment = {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": text, "tokens": [1, 2], "temperature": 0.0,
                       "avg_logprob": -0.2, "compression_ratio": 1.0, "no_speech_prob": 0.0}
            return self.send_json(200, {"task": "transcribe", "language": "English", "duration": 1.5, "text": text, "segments": [segment]})
        return self.send_json(200, {"text": text})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.endswith("/audio/transcriptions"):
            return self.transcription(raw)
        body = json.loads(raw)
        SEEN.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if ":generateContent" in self.path or ":streamGenerateContent" in self.path:
            return self.gemini(body)
        if ":batchEmbedContents" in self.path:
            values = [{"values": [1.0 + i, 1.5 + i, 0.25, -1.0]} for i in range(len(body["requests"]))]
            return self.send_json(200, {"embeddings": values})
        if self.path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [1.0 + i, 1.5 + i, 0.25, -1.0]} for i in range(len(inputs))]
            return self.send_json(200, {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        if self.path.endswith("/fim/completions"):
            message, finish = {"role": "assistant", "content": "return a + b"}, "stop"
        else:
            message, finish = answer(body)
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            frames = [chunk({"role": "assistant", "content": ""})]
            if message.get("tool_calls"):
                call = dict(message["tool_calls"][0], index=0)
                frames.append(chunk({"tool_calls": [call]}))
            else:
                for word in re.findall(r"\S+\s*", message["content"]):
                    frames.append(chunk({"content": word}))
            frames.append(chunk({}, finish))
            for f in frames:
                self.write_chunk(f"data: {json.dumps(f)}\n\n".encode())
                time.sleep(0.02)
            self.write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        payload = json.dumps({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": "mock",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def write_chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def start():
    """Serves on a free loopback port in a background thread; returns the server."""
    import threading
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    if "--tls" in sys.argv[2:]:
        import os
        import ssl
        fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(fixtures, "localhost.pem"), os.path.join(fixtures, "localhost.key"))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
