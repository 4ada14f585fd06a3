#!/usr/bin/env python3
"""`/metrics` read by the official Prometheus Python parser (`prometheus_client`).

Usage: metrics_check.py path/to/freellmapi

Starts the real binary against the mock provider, sends chat traffic (plain and streamed),
scrapes `/metrics` with the client key as Prometheus' `authorization` option sends it, and
parses it with `prometheus_client.parser.text_string_to_metric_families`, which refuses
anything outside the text format. Prints "N passed, N failed".
"""

import json
import os
import time
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy  # noqa: E402

GROQ = "openai/gpt-oss-20b"


def call(proxy, path, body=None, token=None):
    req = urllib.request.Request(f"http://{proxy.addr}{path}", data=body and json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def families(proxy):
    status, ctype, text = call(proxy, "/metrics", token=proxy.token)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    return {f.name: f for f in text_string_to_metric_families(text)}


def total(fams, family, **labels):
    return sum(s.value for s in fams[family].samples
               if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()))


def main():
    with Proxy(sys.argv[1]) as proxy:
        check = proxy.check

        def refused_without_key():
            try:
                call(proxy, "/metrics")
            except urllib.error.HTTPError as e:
                assert e.code == 401, e.code
                return
            raise AssertionError("served without the client key")

        def parses_and_moves():
            before = families(proxy)
            chat = {"model": GROQ, "messages": [{"role": "user", "content": "hi"}]}
            for body in (chat, dict(chat, stream=True)):
                assert call(proxy, "/v1/chat/completions", body, proxy.token)[0] == 200
            # Counted as logged, just after the answer went out: allow a moment.
            for _ in range(100):
                after = families(proxy)
                moved = (total(after, "freellmapi_requests", platform="groq", outcome="success")
                         - total(before, "freellmapi_requests", platform="groq", outcome="success"))
                if moved >= 2:
                    break
                time.sleep(0.05)
            assert moved == 2, moved
            for name in ("freellmapi_attempts", "freellmapi_upstream_latency_seconds",
                         "freellmapi_time_to_first_byte_seconds", "freellmapi_provider_keys",
                         "freellmapi_cooldowns_active", "freellmapi_request_log_queue",
                         "freellmapi_resident_memory_bytes", "freellmapi_streams_in_flight"):
                assert name in after, f"{name} missing"
            assert after["freellmapi_upstream_latency_seconds"].type == "histogram"

        check("/metrics refused without the client key", refused_without_key)
        check("/metrics parsed by prometheus_client, counters move", parses_and_moves)


if __name__ == "__main__":
    main()
