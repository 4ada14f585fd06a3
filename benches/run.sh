#!/usr/bin/env bash
# One command for the whole benchmark: builds the static x86_64 release binary (as shipped),
# makes sure nginx is there, and runs the harness. Pass --quick for a short smoke run.
#
#   benches/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    echo "benches/run.sh: installing nginx (apt) for the baseline hop" >&2
    apt-get install -y -qq nginx >/dev/null
fi
case "$(uname -m)" in
    x86_64) bin="$(cross/build.sh x86_64 | tail -n 1)" ;;
    aarch64) bin="$(cross/build.sh aarch64 | tail -n 1)" ;;
    *) cargo build --release --locked; bin=target/release/freellmapi ;;
esac
cargo bench --locked --bench proxy -- --proxy "$bin" "$@"
