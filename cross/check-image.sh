#!/usr/bin/env bash
# Checks the OCI image cross/image.sh built, without a container runtime:
#   - every blob's digest and size match what points at it;
#   - the index lists exactly linux/amd64, linux/arm64 and linux/arm/v7;
#   - the amd64 image runs: its layer is unpacked and its entrypoint started under the image's
#     config (its Env, its non-root User, / as the layer, via chroot + setpriv when root), and
#     must answer /healthz on the published port and pass its own HEALTHCHECK command.
#
#   cross/check-image.sh [target/oci/layout]
set -euo pipefail
cd "$(dirname "$0")/.."
layout="${1:-target/oci/layout}"
say() { printf 'cross/check-image.sh: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# The checks read JSON with python3 (present wherever CI runs the SDK checks).
py() { python3 -c "$1" "${@:2}"; }

verify_blob() { # digest size
    local file="$layout/blobs/sha256/${1#sha256:}"
    [ -f "$file" ] || fail "missing blob $1"
    [ "sha256:$(sha256sum "$file" | cut -d' ' -f1)" = "$1" ] || fail "blob $1 has another digest"
    [ "$(stat -c %s "$file")" = "$2" ] || fail "blob $1 has another size"
    echo "$file"
}

[ "$(cat "$layout/oci-layout")" = '{"imageLayoutVersion":"1.0.0"}' ] || fail "not an OCI layout"
read -r idx_digest idx_size < <(py 'import json,sys; m=json.load(open(sys.argv[1]))["manifests"][0]; print(m["digest"], m["size"])' "$layout/index.json")
index="$(verify_blob "$idx_digest" "$idx_size")"
platforms="$(py 'import json,sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    p = m["platform"]; print(p["os"] + "/" + p["architecture"] + ("/" + p["variant"] if "variant" in p else ""))' "$index" | sort | tr '\n' ' ')"
[ "$platforms" = "linux/amd64 linux/arm/v7 linux/arm64 " ] || fail "platforms are: $platforms"
say "index lists $platforms"

# Every manifest, config and layer blob is what it claims; sizes per platform for the notes.
while read -r platform digest size; do
    manifest="$(verify_blob "$digest" "$size")"
    read -r cdigest csize ldigest lsize < <(py 'import json,sys; m=json.load(open(sys.argv[1])); print(m["config"]["digest"], m["config"]["size"], m["layers"][0]["digest"], m["layers"][0]["size"])' "$manifest")
    verify_blob "$cdigest" "$csize" > /dev/null
    verify_blob "$ldigest" "$lsize" > /dev/null
    say "$platform: $((lsize / 1024)) KiB compressed layer"
    if [ "$platform" = amd64 ]; then amd64_config="$layout/blobs/sha256/${cdigest#sha256:}"; amd64_layer="$layout/blobs/sha256/${ldigest#sha256:}"; fi
done < <(py 'import json,sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    print(m["platform"]["architecture"] + m["platform"].get("variant", ""), m["digest"], m["size"])' "$index")

# Who owns what in the layer: the binary root's and not writable by the runtime user, /data
# the runtime user's.
listing="$(tar -tzvf "$amd64_layer" --numeric-owner)"
grep -Eq '^-rwxr-xr-x 0/0 .* freellmapi$' <<< "$listing" || fail "the binary is not root-owned 0755: $listing"
grep -Eq '^d[rwx-]{9} 65532/65532 .* data/?$' <<< "$listing" || fail "/data is not the runtime user's: $listing"
for f in cl100k_base.tiktoken o200k_base.tiktoken NOTICE; do
    grep -Eq "^-rw-r--r-- 0/0 .* usr/share/freellmapi/vocab/$f\$" <<< "$listing" || fail "the layer lacks vocab/$f: $listing"
done
say "layer: /freellmapi root-owned 0755, /data owned by 65532, the vocabularies in /usr/share/freellmapi/vocab"

# The amd64 image, run as its config says.
rootfs="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$rootfs"' EXIT
pid=
chmod 755 "$rootfs"  # the image's / : readable by its user
tar -xzf "$amd64_layer" -C "$rootfs"
mapfile -t envs < <(py 'import json,sys; [print(e) for e in json.load(open(sys.argv[1]))["config"]["Env"]]' "$amd64_config")
entry="$(py 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["config"]["Entrypoint"]))' "$amd64_config")"
user="$(py 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["User"])' "$amd64_config")"
health="$(py 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["config"]["Healthcheck"]["Test"][1:]))' "$amd64_config")"
[ "$entry" = /freellmapi ] || fail "entrypoint is $entry"
if [ "$(id -u)" = 0 ]; then
    # / is the unpacked layer and the process runs as the image's user.
    chroot_bin="$(command -v chroot)"
    cmd=("$chroot_bin" --userspec="$user" "$rootfs" "$entry")
    health_cmd=("$chroot_bin" --userspec="$user" "$rootfs" $health)
    how="chroot into the unpacked layer as user $user"
else
    cmd=("$rootfs$entry")
    health_cmd=("$rootfs"$health)
    envs=("${envs[@]/FREELLMAPI_DATA_DIR=\/data/FREELLMAPI_DATA_DIR=$rootfs/data}")
    how="the unpacked binary run directly with /data under the unpacked layer (not root: no chroot)"
fi
env -i "${envs[@]}" "${cmd[@]}" > "$rootfs.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do
    grep -q "listening on" "$rootfs.log" 2>/dev/null && break
    sleep 0.2
done
grep -q "listening on http://0.0.0.0:3001" "$rootfs.log" || { cat "$rootfs.log" >&2; fail "the entrypoint did not listen on 0.0.0.0:3001"; }
code="$(python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:3001/healthz", timeout=5).status)')"
[ "$code" = 200 ] || fail "/healthz answered $code"
env -i "${envs[@]}" "${health_cmd[@]}" || fail "the image's HEALTHCHECK ($health) failed"
[ -f "$rootfs/data/master.key" ] || fail "no master.key in /data: state is not kept in the volume"
say "amd64 image ran ($how): /healthz 200, HEALTHCHECK ok, state in /data"
rm -f "$rootfs.log"
