#!/usr/bin/env bash
# Builds a static (musl) release binary of freellmapi without Docker.
#
#   cross/build.sh aarch64|armv7|x86_64
#
# Uses a rustup target plus Debian's cross gcc and Debian's multiarch musl (its
# musl-gcc.specs points gcc at musl's headers and crt files), so ring, mimalloc and LMDB's
# C code are compiled against musl, not glibc. Installs what is missing (apt, rustup) and says
# so. Output: target/<triple>/release/freellmapi
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${1:-}"
case "$arch" in
    aarch64) triple=aarch64-unknown-linux-musl;     gnu=aarch64-linux-gnu;   musl=aarch64-linux-musl;   debarch=arm64 ;;
    armv7)   triple=armv7-unknown-linux-musleabihf; gnu=arm-linux-gnueabihf; musl=arm-linux-musleabihf; debarch=armhf ;;
    x86_64)  triple=x86_64-unknown-linux-musl;      gnu=x86_64-linux-gnu;    musl=x86_64-linux-musl;    debarch=amd64 ;;
    *) echo "usage: cross/build.sh aarch64|armv7|x86_64" >&2; exit 2 ;;
esac

say() { printf 'cross/build.sh: %s\n' "$*" >&2; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- toolchain: rustup target -------------------------------------------------------------
static=yes
if ! rustup target list --installed | grep -qx "$triple"; then
    say "installing the Rust target $triple (rustup)"
    if ! rustup target add "$triple" && [ "$arch" = armv7 ]; then
        # Some rustup mirrors lack the 32-bit ARM musl std. Fall back to glibc (dynamic), which
        # runs on Raspberry Pi OS bookworm (glibc 2.36) and later.
        triple=armv7-unknown-linux-gnueabihf
        static=no
        say "the musl target is not available here; building $triple (dynamically linked, glibc)"
        rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
    fi
fi

# --- toolchain: cross gcc and musl for the target (Debian packages) ------------------------
host_arch="$(dpkg --print-architecture)"
packages=()
if [ "$debarch" = "$host_arch" ]; then
    cc_bin=gcc
    command -v gcc >/dev/null || packages+=(gcc)
    musl_pkg=musl-dev
else
    cc_bin="$gnu-gcc"
    command -v "$cc_bin" >/dev/null || packages+=("gcc-$gnu")
    musl_pkg="musl-dev:$debarch"
    if ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
        say "enabling Debian multiarch for $debarch"
        sudo_ dpkg --add-architecture "$debarch"
        sudo_ apt-get update -qq || true
    fi
fi
specs="/usr/lib/$musl/musl-gcc.specs"
[ "$static" = no ] || [ -f "$specs" ] || packages+=("$musl_pkg")
if [ ${#packages[@]} -gt 0 ]; then
    say "installing ${packages[*]} (apt)"
    sudo_ apt-get install -y -qq "${packages[@]}" >/dev/null || { sudo_ apt-get update -qq; sudo_ apt-get install -y -qq "${packages[@]}" >/dev/null; }
fi

# --- build -------------------------------------------------------------------------------
env_triple="${triple//-/_}"
upper="$(echo "$env_triple" | tr '[:lower:]' '[:upper:]')"
export "CC_${env_triple}=$cc_bin"
export "AR_${env_triple}=$( [ "$cc_bin" = gcc ] && echo ar || echo "$gnu-ar" )"
export "CARGO_TARGET_${upper}_LINKER=$cc_bin"
if [ "$static" = yes ]; then
    # MDB_USE_ROBUST=0: musl refuses robust mutexes unless the kernel answers get_robust_list,
    # which qemu-user never does, so LMDB could not open under emulation. Plain process-shared
    # mutexes only lose automatic recovery when a process dies holding the write lock while
    # another still has the store open; the next start with no other process resets the locks.
    export "CFLAGS_${env_triple}=-specs $specs -O2 -DMDB_USE_ROBUST=0"
    # Fully static, and no host-specific CPU features: it must run on any board of its arch.
    export "CARGO_TARGET_${upper}_RUSTFLAGS=-C target-feature=+crt-static"
else
    export "CFLAGS_${env_triple}=-O2"
fi

say "building $triple"
start=$(date +%s)
cargo build --release --locked --target "$triple"
out="target/$triple/release/freellmapi"
say "built $out ($(stat -c %s "$out") bytes) in $(( $(date +%s) - start )) s"
if [ "$static" = yes ] && ! file "$out" 2>/dev/null | grep -q "statically linked\|static-pie"; then
    say "warning: $out does not look statically linked"
fi
echo "$out"
