#!/usr/bin/env bash
# Proves the cross-built binaries on emulated ARM (Debian's qemu-user): the aarch64 static
# binary starts, takes a key pointing at a mock provider, answers a streamed chat completion
# and stops cleanly on SIGTERM; the armv7 binary answers --version.
#
#   cross/qemu-smoke.sh   (after cross/build.sh aarch64 and cross/build.sh armv7)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'qemu-smoke: %s\n' "$*" >&2; }
command -v qemu-aarch64 >/dev/null || { say "installing qemu-user (apt)"; apt-get install -y -qq qemu-user >/dev/null; }

bin=target/aarch64-unknown-linux-musl/release/freellmapi
[ -x "$bin" ] || { say "missing $bin: run cross/build.sh aarch64"; exit 1; }
work="$(mktemp -d)"
cleanup() { kill "${server:-}" "${mock:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 tests/sdk/mock_provider.py "$work/port" & mock=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
export FREELLMAPI_UPSTREAM_GROQ="http://127.0.0.1:$(cat "$work/port")/openai/v1"
run() { qemu-aarch64 "$bin" "$@" --data-dir "$work/data"; }

file "$bin" | grep -q "ARM aarch64" || { say "$bin is not an aarch64 binary"; exit 1; }
echo gsk_qemu_smoke_key | run keys add groq --label smoke
qemu-aarch64 "$bin" --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/out" 2> "$work/log" & server=$!
for _ in $(seq 200); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
addr="$(grep -o 'listening on http://[^ ]*' "$work/log" | sed 's|listening on http://||')"
[ -n "$addr" ] || { cat "$work/log"; say "the server did not start"; exit 1; }
token="$(run token)"

say "streaming a completion through $addr (aarch64 under qemu)"
curl -sS -N --max-time 60 "http://$addr/v1/chat/completions" \
    -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
    -d '{"model":"llama-3.3-70b-versatile","stream":true,"messages":[{"role":"user","content":"hi"}]}' > "$work/sse"
text="$(grep '^data: {' "$work/sse" | sed 's/^data: //' | python3 -c 'import json,sys; print("".join((c["choices"][0]["delta"].get("content") or "") for c in map(json.loads, sys.stdin) if c.get("choices")))')"
[ "$text" = "Hello from the mock" ] || { cat "$work/sse"; say "unexpected answer: $text"; exit 1; }
grep -q '^data: \[DONE\]$' "$work/sse" || { say "no [DONE]"; exit 1; }

kill -TERM "$server"
code=0; wait "$server" || code=$?
[ "$code" = 0 ] || { cat "$work/log"; say "exit code $code after SIGTERM"; exit 1; }
grep -q "stopped" "$work/log" || { say "no clean stop in the log"; exit 1; }
say "aarch64: streamed \"$text\", stopped cleanly"

armv7="$(ls target/armv7-unknown-linux-*/release/freellmapi 2>/dev/null | head -n 1)"
[ -n "$armv7" ] || { say "missing the armv7 binary: run cross/build.sh armv7"; exit 1; }
version="$(qemu-arm -L /usr/arm-linux-gnueabihf "$armv7" --version)"
[ "$version" = "freellmapi $(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" ] || { say "armv7 --version said: $version"; exit 1; }
say "armv7: $version"
echo "2 passed, 0 failed"
