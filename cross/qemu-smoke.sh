#!/usr/bin/env bash
# Proves the cross-built static binaries on emulated ARM (Debian's qemu-user): for aarch64
# and armv7 each, --version, a key pointing at a mock provider served over HTTPS (the
# certificate verified against tests/tls/ca.pem: a full TLS handshake on the production
# coroutine stacks of that architecture), a streamed chat completion through the server, and
# a clean stop on SIGTERM.
#
#   cross/qemu-smoke.sh   (after cross/build.sh aarch64 and cross/build.sh armv7)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'qemu-smoke: %s\n' "$*" >&2; }
command -v qemu-aarch64 >/dev/null || { say "installing qemu-user (apt)"; apt-get install -y -qq qemu-user >/dev/null || { apt-get update -qq || true; apt-get install -y -qq qemu-user >/dev/null; }; }

work="$(mktemp -d)"
cleanup() { kill "${server:-}" "${mock:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
python3 tests/sdk/mock_provider.py "$work/port" --tls & mock=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
export FREELLMAPI_UPSTREAM_GROQ="https://localhost:$(cat "$work/port")/openai/v1"
export FREELLMAPI_CA_FILE="$PWD/tests/tls/ca.pem"

# smoke <qemu> <binary> <file(1) pattern>: key, server, streamed completion, clean SIGTERM.
smoke() {
    local qemu="$1" bin="$2" kind="$3" data="$work/data-$1"
    [ -x "$bin" ] || { say "missing $bin: run cross/build.sh first"; exit 1; }
    grep -q "$kind" <<< "$(file "$bin")" || { say "$bin is not $kind"; exit 1; }
    grep -q "statically linked" <<< "$(file "$bin")" || { say "$bin is not static"; exit 1; }
    local version
    version="$("$qemu" "$bin" --version)"
    [ "$version" = "freellmapi $(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" ] || { say "--version said: $version"; exit 1; }
    echo gsk_qemu_smoke_key | "$qemu" "$bin" keys add groq --label smoke --data-dir "$data" >/dev/null
    "$qemu" "$bin" --listen 127.0.0.1:0 --data-dir "$data" > "$work/out" 2> "$work/log" & server=$!
    for _ in $(seq 300); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
    local addr token text
    addr="$(grep -o 'listening on http://[^ ]*' "$work/log" | sed 's|listening on http://||')"
    [ -n "$addr" ] || { cat "$work/log"; say "the server did not start"; exit 1; }
    token="$("$qemu" "$bin" token --data-dir "$data")"
    say "streaming a completion through $addr ($kind under $qemu)"
    curl -sS -N --max-time 60 "http://$addr/v1/chat/completions" \
        -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
        -d '{"model":"openai/gpt-oss-120b","stream":true,"messages":[{"role":"user","content":"hi"}]}' > "$work/sse"
    # No frames at all (an error answer) must reach the check below, not stop the script here.
    text="$({ grep '^data: {' "$work/sse" || true; } | sed 's/^data: //' | python3 -c 'import json,sys; print("".join((c["choices"][0]["delta"].get("content") or "") for c in map(json.loads, sys.stdin) if c.get("choices")))')"
    [ "$text" = "Hello from the mock" ] || { cat "$work/sse"; say "unexpected answer: $text"; exit 1; }
    grep -q '^data: \[DONE\]$' "$work/sse" || { say "no [DONE]"; exit 1; }
    kill -TERM "$server"
    local code=0
    wait "$server" || code=$?
    server=
    [ "$code" = 0 ] || { cat "$work/log"; say "exit code $code after SIGTERM"; exit 1; }
    grep -q "stopped" "$work/log" || { say "no clean stop in the log"; exit 1; }
    say "$kind: $version, streamed \"$text\" over verified TLS, stopped cleanly"
}

smoke qemu-aarch64 target/aarch64-unknown-linux-musl/release/freellmapi "ARM aarch64"
smoke qemu-arm target/armv7-unknown-linux-musleabihf/release/freellmapi "32-bit LSB executable, ARM"
echo "2 passed, 0 failed"
