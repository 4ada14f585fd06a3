#!/usr/bin/env bash
# Checks the shipped nginx site (systemd/nginx-freellmapi.conf) with a real nginx in front of
# a built binary, on loopback ports instead of 80:
#   - nginx accepts the file (nginx -t);
#   - a name that is not this machine's gets no answer (the default server's 444);
#   - addresses and LAN names reach the proxy;
#   - a LAN name the proxy was not told about is refused by the proxy itself (421).
#
#   cross/check-nginx.sh [target/debug/freellmapi]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-target/debug/freellmapi}")"
say() { printf 'cross/check-nginx.sh: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

nginx="$(command -v nginx || echo /usr/sbin/nginx)"
if [ ! -x "$nginx" ]; then
    say "installing nginx (apt)"
    apt-get install -y -qq nginx >/dev/null
fi

work="$(mktemp -d)"
proxy_pid=
cleanup() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
proxy_port="$(free_port)"
front_port="$(free_port)"

FREELLMAPI_TRUST_PROXY=127.0.0.1/32 "$bin" --listen "127.0.0.1:$proxy_port" --data-dir "$work/data" \
    > "$work/proxy.out" 2> "$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$work/proxy.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$work/proxy.log" || { cat "$work/proxy.log" >&2; fail "the proxy did not start"; }

# The site as shipped, moved to loopback ports (no IPv6 listener: CI may have none).
sed -e "s/127.0.0.1:3001/127.0.0.1:$proxy_port/" \
    -e "s/listen 80/listen 127.0.0.1:$front_port/" \
    -e '/listen \[::\]:80/d' systemd/nginx-freellmapi.conf > "$work/site.conf"
mkdir -p "$work/tmp"
cat > "$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/error.log;
daemon on;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $work/site.conf;
}
CONF
"$nginx" -t -q -p "$work" -c "$work/nginx.conf" || fail "nginx -t refuses the site"
"$nginx" -p "$work" -c "$work/nginx.conf" || fail "nginx did not start with the site"
for _ in $(seq 1 50); do [ -f "$work/nginx.pid" ] && break; sleep 0.1; done

# status HOST PATH: the status nginx (or the proxy behind it) answers, or "dropped".
status() {
    python3 - "$front_port" "$1" "$2" <<'PY'
import http.client, sys
port, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.putrequest("GET", path, skip_host=True)
c.putheader("Host", host)
c.endheaders()
try:
    print(c.getresponse().status)
except (http.client.RemoteDisconnected, ConnectionResetError):
    print("dropped")
PY
}

expect() { # host path want
    got="$(status "$1" "$2")"
    [ "$got" = "$3" ] || fail "Host: $1 $2 -> $got, expected $3"
    say "Host: $1 $2 -> $got"
}
expect "attacker.example" /healthz dropped
expect "attacker.example:$front_port" /api/session dropped
expect "localhost.attacker.example" /api/session dropped
expect "127.0.0.1:$front_port" /api/session 200
expect "raspberrypi" /healthz 200
expect "localhost:$front_port" /api/session 200
expect "pi.lan" /api/session 421
say "ok"
