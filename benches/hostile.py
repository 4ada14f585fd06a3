#!/usr/bin/env python3
"""Peak memory and answer times of a freellmapi binary under the hostile repros: clients
without a key announcing 25 MiB bodies, one large image for a Gemini model, a provider
announcing a 100 MiB reply, and a provider trickling its reply past the request budget.

    benches/hostile.py BINARY [BINARY ...]

Runs each repro against a fresh server per binary (loopback only, bounded in time), reads
VmHWM / VmRSS from /proc, and prints one table. Stdlib only."""

import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1024 * 1024
GEMINI_ANSWER = json.dumps({
    "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
}).encode()
COMPLETION = json.dumps({
    "id": "x", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}).encode()


class Provider(socketserver.BaseRequestHandler):
    """The path's first segment picks the behaviour: gemini, huge, trickle or ok."""

    def handle(self):
        s = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        while len(body) < length:
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            body += chunk
        kind = path.strip("/").split("/")[0]
        try:
            if kind == "huge":
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n")
                block = b" " * (1 << 20)
                for _ in range(100):
                    s.sendall(block)
            elif kind == "trickle":
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                for _ in range(200):
                    time.sleep(0.5)
                    s.sendall(b" ")
            else:
                answer = GEMINI_ANSWER if kind == "gemini" else COMPLETION
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(answer) + answer)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(binary, platform, key, env_extra):
    data = tempfile.mkdtemp(prefix="hostile-")
    env = dict(os.environ, FREELLMAPI_LOG="warn", FREELLMAPI_SYNC_HOURS="0", **env_extra)
    key = subprocess.run([binary, "keys", "add", platform, "--unlimited", "--data-dir", data],
                         input=key.encode(), env=env, capture_output=True)
    assert key.returncode == 0, key.stderr
    port_probe = socket.socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    token = subprocess.run([binary, "token", "--data-dir", data], env=env, capture_output=True).stdout.decode().strip()
    return proc, port, token


def post(port, token, body, timeout=30.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s.sendall(head + body)
    answer = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    s.close()
    return answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")


def unauthenticated(port, clients):
    def one():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 26214400\r\n\r\n")
            block = b" " * (1 << 20)
            for _ in range(25):
                s.sendall(block)
            s.sendall(b" " * (MIB - 1))
            s.settimeout(5)
            s.recv(1024)
        except OSError:
            pass
    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def image_body(total):
    head = b'{"model":"gemini-3.6-flash","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,'
    tail = b'"}}]}]}'
    return head + b"A" * (total - len(head) - len(tail)) + tail


def measure(binary, provider_port):
    rows = []
    base = f"http://127.0.0.1:{provider_port}"
    for clients in (4, 8):
        proc, port, _ = start(binary, "groq", "gsk_x", {"FREELLMAPI_UPSTREAM_GROQ": f"{base}/ok"})
        idle = status(proc.pid, "VmRSS")
        unauthenticated(port, clients)
        time.sleep(1)
        rows.append((f"{clients} clients, no key, 25 MiB bodies", idle, status(proc.pid, "VmHWM"), status(proc.pid, "VmRSS"), ""))
        proc.kill()
    for size in (8, 20):
        proc, port, token = start(binary, "google", "AIzaSyA-hostile-0000000000000000000000", {
                                           "FREELLMAPI_UPSTREAM_GOOGLE": f"{base}/gemini/v1beta"})
        idle = status(proc.pid, "VmRSS")
        answer = post(port, token, image_body(size * MIB))
        time.sleep(1)
        rows.append((f"{size} MiB image to Gemini", idle, status(proc.pid, "VmHWM"), status(proc.pid, "VmRSS"), answer))
        proc.kill()
    proc, port, token = start(binary, "groq", "gsk_x", {"FREELLMAPI_UPSTREAM_GROQ": f"{base}/huge"})
    idle = status(proc.pid, "VmRSS")
    answer = post(port, token, b'{"messages":[{"role":"user","content":"hi"}]}')
    rows.append(("reply announcing 100 MiB", idle, status(proc.pid, "VmHWM"), status(proc.pid, "VmRSS"), answer))
    proc.kill()
    proc, port, token = start(binary, "groq", "gsk_x", {"FREELLMAPI_UPSTREAM_GROQ": f"{base}/trickle",
                                       "FREELLMAPI_REQUEST_BUDGET_SECS": "6", "FREELLMAPI_FIRST_BYTE_TIMEOUT_SECS": "2",
                                       "FREELLMAPI_IDLE_TIMEOUT_SECS": "2"})
    started = time.time()
    answer = post(port, token, b'{"messages":[{"role":"user","content":"hi"}]}', timeout=60)
    rows.append(("trickling reply, 6 s budget", 0, 0, 0, f"{answer} after {time.time() - started:.1f} s"))
    proc.kill()
    return rows


def main():
    provider = Server(("127.0.0.1", 0), Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    for binary in sys.argv[1:]:
        print(f"\n{binary}")
        print("| repro | idle MiB | peak MiB | after MiB | answer |")
        print("|---|---|---|---|---|")
        for name, idle, peak, after, answer in measure(binary, provider.server_address[1]):
            print(f"| {name} | {idle:.1f} | {peak:.1f} | {after:.1f} | {answer} |")


if __name__ == "__main__":
    main()
