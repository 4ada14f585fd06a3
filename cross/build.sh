#!/usr/bin/env bash
# Builds a static (musl) release binary of freellmapi without Docker.
#
#   cross/build.sh aarch64|armv7|x86_64
#   cross/build.sh x86_64 --test NAME   runs tests/NAME.rs built exactly like the release binary
#
# Uses a rustup target plus Debian's cross gcc and Debian's multiarch musl (its
# musl-gcc.specs points gcc at musl's headers and crt files), so ring, mimalloc and LMDB's
# C code are compiled against musl, not glibc. Installs what is missing (apt, rustup) and says
# so. Output: target/<triple>/release/freellmapi
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${1:-}"
test_name=""
if [ "${2:-}" = "--test" ]; then
    test_name="${3:?--test needs a test name}"
fi
case "$arch" in
    aarch64) triple=aarch64-unknown-linux-musl;     gnu=aarch64-linux-gnu;   musl=aarch64-linux-musl;   debarch=arm64 ;;
    armv7)   triple=armv7-unknown-linux-musleabihf; gnu=arm-linux-gnueabihf; musl=arm-linux-musleabihf; debarch=armhf ;;
    x86_64)  triple=x86_64-unknown-linux-musl;      gnu=x86_64-linux-gnu;    musl=x86_64-linux-musl;    debarch=amd64 ;;
    *) echo "usage: cross/build.sh aarch64|armv7|x86_64" >&2; exit 2 ;;
esac

say() { printf 'cross/build.sh: %s\n' "$*" >&2; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- toolchain: rustup target -------------------------------------------------------------
# Some rustup mirrors lack a target's prebuilt std (this one answers 404 for the 32-bit ARM
# musl std). Then std is built from source (rust-src, -Zbuild-std) against Debian's musl.
build_std=no
if ! grep -qx "$triple" <<< "$(rustup target list --installed)"; then
    say "installing the Rust target $triple (rustup)"
    if ! rustup target add "$triple" 2>/dev/null; then
        say "no prebuilt std for $triple here; building std from source (rust-src)"
        grep -q '^rust-src' <<< "$(rustup component list --installed)" || rustup component add rust-src
        build_std=yes
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
    if ! grep -qx "$debarch" <<< "$(dpkg --print-foreign-architectures)"; then
        say "enabling Debian multiarch for $debarch"
        sudo_ dpkg --add-architecture "$debarch"
        sudo_ apt-get update -qq || true
    fi
fi
specs="/usr/lib/$musl/musl-gcc.specs"
[ -f "$specs" ] || packages+=("$musl_pkg")
if [ ${#packages[@]} -gt 0 ]; then
    say "installing ${packages[*]} (apt)"
    sudo_ apt-get install -y -qq "${packages[@]}" >/dev/null || { sudo_ apt-get update -qq || true; sudo_ apt-get install -y -qq "${packages[@]}" >/dev/null; }
fi

# --- build -------------------------------------------------------------------------------
env_triple="${triple//-/_}"
upper="$(echo "$env_triple" | tr '[:lower:]' '[:upper:]')"
export "CC_${env_triple}=$cc_bin"
export "AR_${env_triple}=$( [ "$cc_bin" = gcc ] && echo ar || echo "$gnu-ar" )"
export "CARGO_TARGET_${upper}_LINKER=$cc_bin"
export "CFLAGS_${env_triple}=-specs $specs -O2"
# Fully static, and no host-specific CPU features: it must run on any board of its arch.
rustflags="-C target-feature=+crt-static"
# LMDB's writer lock is a robust mutex, so a process killed inside a write transaction never
# blocks the next writer. musl refuses robust mutexes where the kernel does not answer
# get_robust_list (qemu-user, used by cross/qemu-smoke.sh); LMDB's call goes through a wrapper
# that falls back to a plain mutex there (src/store/robust.rs).
rustflags="$rustflags -C link-arg=-Wl,--wrap=pthread_mutexattr_setrobust --cfg freellmapi_robust_fallback"
cargo_args=(--release --locked --target "$triple")
if [ "$build_std" = yes ]; then
    # Without a prebuilt std there are no self-contained crt files: link with Debian's musl
    # (through its specs) and gcc's unwinder, which provides the _Unwind_* API std expects
    # from libunwind.
    shim="target/unwind-shim/$triple"
    mkdir -p "$shim"
    ln -sf "$("$cc_bin" -print-file-name=libgcc_eh.a)" "$shim/libunwind.a"
    rustflags="$rustflags -C link-self-contained=no -C link-arg=-specs=$specs -L $PWD/$shim -C link-arg=-lgcc"
    export RUSTC_BOOTSTRAP=1
    cargo_args+=(-Zbuild-std=std,panic_unwind)
fi
export "CARGO_TARGET_${upper}_RUSTFLAGS=$rustflags"

if [ -n "$test_name" ]; then
    say "testing tests/$test_name.rs on $triple"
    exec cargo test "${cargo_args[@]}" --test "$test_name"
fi

say "building $triple"
start=$(date +%s)
cargo build "${cargo_args[@]}"
out="target/$triple/release/freellmapi"
say "built $out ($(stat -c %s "$out") bytes) in $(( $(date +%s) - start )) s"
if ! grep -q "statically linked\|static-pie" <<< "$(file "$out" 2>/dev/null)"; then
    say "error: $out is not statically linked"
    exit 1
fi
echo "$out"
