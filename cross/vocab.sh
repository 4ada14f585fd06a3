#!/usr/bin/env bash
# Fetches the token vocabularies the .deb and the image ship (tiktoken's cl100k_base and
# o200k_base, MIT-licensed by OpenAI) into target/vocab/, for embeddings sent as token ids.
# They come from the tiktoken-rs crate on crates.io (a registry CI reaches), pinned by the
# crate's SHA-256, and each file is checked against the hash tiktoken itself publishes.
#
#   cross/vocab.sh [DIR]      # default target/vocab; prints DIR
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'cross/vocab.sh: %s\n' "$*" >&2; }

dir="${1:-target/vocab}"
crate=tiktoken-rs-0.7.0
crate_sha=25563eeba904d770acf527e8b370fe9a5547bacd20ff84a0b6c3bc41288e5625
declare -A want=(
    [cl100k_base.tiktoken]=223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7
    [o200k_base.tiktoken]=446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
)

have() { [ -f "$dir/$1" ] && [ "$(sha256sum "$dir/$1" | cut -d' ' -f1)" = "${want[$1]}" ]; }
if have cl100k_base.tiktoken && have o200k_base.tiktoken && [ -f "$dir/NOTICE" ]; then
    echo "$dir"; exit 0
fi

mkdir -p "$dir" target/vocab-fetch
archive="target/vocab-fetch/$crate.crate"
if [ ! -f "$archive" ] || [ "$(sha256sum "$archive" | cut -d' ' -f1)" != "$crate_sha" ]; then
    say "fetching $crate from crates.io"
    curl -fsSL --retry 3 -o "$archive.part" "https://static.crates.io/crates/tiktoken-rs/$crate.crate"
    mv "$archive.part" "$archive"
fi
got="$(sha256sum "$archive" | cut -d' ' -f1)"
[ "$got" = "$crate_sha" ] || { say "$archive: SHA-256 $got, expected $crate_sha"; exit 1; }
for f in "${!want[@]}"; do
    tar -xzf "$archive" -O "$crate/assets/$f" > "$dir/$f.part"
    mv "$dir/$f.part" "$dir/$f"
    have "$f" || { say "$f does not match tiktoken's published SHA-256"; exit 1; }
done
cat > "$dir/NOTICE" <<'NOTICE'
cl100k_base.tiktoken and o200k_base.tiktoken are OpenAI's tiktoken vocabularies
(https://github.com/openai/tiktoken, MIT License, Copyright (c) 2022 OpenAI, Shantanu
Jain), as published at https://openaipublic.blob.core.windows.net/encodings/. freellmapi
reads them to turn embeddings sent as token ids back into text.
NOTICE
say "cl100k_base and o200k_base in $dir"
echo "$dir"
