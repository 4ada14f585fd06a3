#!/usr/bin/env bash
# The binary and .deb sizes README's install table states, held against the artefacts CI just
# built (cross/build.sh, cross/package.sh): each must be within 5% of the real size, so the
# table cannot drift far. Prints the real figures either way.
#
#   cross/check-sizes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# Whether the stated MiB figure is within 5% of the real byte count.
close() { awk -v s="$1" -v b="$2" 'BEGIN { r = s * 1048576 / b; exit !(r > 0.95 && r < 1.05) }'; }

failed=0
for row in "aarch64 aarch64-unknown-linux-musl arm64" \
           "armv7 armv7-unknown-linux-musleabihf armhf" \
           "x86_64 x86_64-unknown-linux-musl amd64"; do
    read -r name triple debarch <<<"$row"
    line="$(grep -E "^\| $name \(\`$triple\`\) \|" README.md)" || {
        echo "check-sizes: README has no row for $name"; failed=1; continue; }
    stated_bin="$(awk -F'|' '{ print $3 }' <<<"$line" | grep -oE '[0-9.]+')"
    stated_deb="$(awk -F'|' '{ print $5 }' <<<"$line" | grep -oE '[0-9.]+')"
    bin="target/$triple/release/freellmapi"
    deb="$(ls target/debian/freellmapi_*_"$debarch".deb)"
    real_bin="$(stat -c %s "$bin")"
    real_deb="$(stat -c %s "$deb")"
    echo "check-sizes: $name binary $(mib "$real_bin") MiB (README $stated_bin), .deb $(mib "$real_deb") MiB (README $stated_deb)"
    close "$stated_bin" "$real_bin" || { echo "check-sizes: README's $name binary size is off"; failed=1; }
    close "$stated_deb" "$real_deb" || { echo "check-sizes: README's $name .deb size is off"; failed=1; }
done
exit "$failed"
