#!/usr/bin/env bash
# Builds the .deb for one architecture into target/debian/.
#
#   cross/package.sh aarch64|armv7|x86_64
#
# The binary comes from cross/build.sh (static musl); the
# package metadata is [package.metadata.deb] in Cargo.toml; maintainer scripts are in
# cross/debian/; the token vocabularies come from cross/vocab.sh. Installs cargo-deb when missing (cargo install, from crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'cross/package.sh: %s\n' "$*" >&2; }

arch="${1:-}"
case "$arch" in aarch64|armv7|x86_64) ;; *) echo "usage: cross/package.sh aarch64|armv7|x86_64" >&2; exit 2 ;; esac

if ! command -v cargo-deb >/dev/null; then
    say "installing cargo-deb (cargo install --locked cargo-deb)"
    cargo install --locked cargo-deb
fi

binary="$(cross/build.sh "$arch" | tail -n 1)"
cross/vocab.sh >/dev/null
triple="$(basename "$(dirname "$(dirname "$binary")")")"

say "packaging $binary"
mkdir -p target/debian
# Stripped at link time already; a host strip cannot handle foreign architectures anyway.
cargo deb --no-build --no-strip --target "$triple" --output target/debian/ | tail -n 1
