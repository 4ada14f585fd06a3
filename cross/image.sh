#!/usr/bin/env bash
# Builds the multi-arch OCI image (linux/amd64, linux/arm64, linux/arm/v7) without a container
# daemon or image tool: each image is one layer holding the static binary (with its built-in
# CA roots, root-owned), the token vocabularies in /usr/share/freellmapi/vocab and an empty
# /data owned by the non-root user, plus an OCI config and manifest;
# an image index ties the three together.
#
#   cross/image.sh            # builds the binaries (cross/build.sh) and the image
#
# Output: target/oci/layout/ (an OCI image layout) and target/oci/freellmapi-<version>.oci.tar
# (the same as one archive). Load it with
#   podman load -i target/oci/freellmapi-<version>.oci.tar
#   skopeo copy oci-archive:target/oci/freellmapi-<version>.oci.tar docker://registry/freellmapi:<version>
# Layers are reproducible: sorted, dated to the last commit; /data owned by uid/gid 65532, the
# binary by root.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'cross/image.sh: %s\n' "$*" >&2; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
epoch="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
out=target/oci
layout="$out/layout"
rm -rf "$layout" && mkdir -p "$layout/blobs/sha256"
uid=65532

# Writes stdin as a blob; prints "sha256:<hex> <size>".
blob() {
    local tmp="$out/blob.tmp" digest
    cat > "$tmp"
    digest="$(sha256sum "$tmp" | cut -d' ' -f1)"
    mv "$tmp" "$layout/blobs/sha256/$digest"
    echo "sha256:$digest $(stat -c %s "$layout/blobs/sha256/$digest")"
}

vocab="$(cross/vocab.sh)"
manifests=()
for arch in x86_64 aarch64 armv7; do
    case "$arch" in
        x86_64)  platform='"architecture":"amd64","os":"linux"' ;;
        aarch64) platform='"architecture":"arm64","os":"linux"' ;;
        armv7)   platform='"architecture":"arm","os":"linux","variant":"v7"' ;;
    esac
    binary="$(cross/build.sh "$arch" | tail -n 1)"
    root="$out/rootfs-$arch"
    rm -rf "$root" && mkdir -p "$root/data" "$root/usr/share/freellmapi/vocab"
    install -m 0755 "$binary" "$root/freellmapi"
    install -m 0644 "$vocab"/{cl100k_base.tiktoken,o200k_base.tiktoken,NOTICE} "$root/usr/share/freellmapi/vocab/"
    layer_tar="$out/layer-$arch.tar"
    # /data belongs to the runtime user; the binary to root (0755), so the process it runs
    # cannot rewrite its own program.
    pack() { # owner mode(c|r) path
        tar --sort=name --mtime="@$epoch" --owner="$1" --group="$1" --numeric-owner \
            --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
            -C "$root" -"$2"f "$layer_tar" "$3"
    }
    pack "$uid" c data
    pack 0 r freellmapi
    pack 0 r usr
    diff_id="sha256:$(sha256sum "$layer_tar" | cut -d' ' -f1)"
    read -r layer_digest layer_size < <(gzip -9 -n -c "$layer_tar" | blob)
    rm -rf "$root" "$layer_tar"

    config="{\"created\":\"$created\",$platform,\"config\":{\"User\":\"$uid:$uid\",\
\"Entrypoint\":[\"/freellmapi\"],\"Env\":[\"FREELLMAPI_LISTEN=0.0.0.0:3001\",\"FREELLMAPI_DATA_DIR=/data\"],\
\"ExposedPorts\":{\"3001/tcp\":{}},\"Volumes\":{\"/data\":{}},\"WorkingDir\":\"/data\",\
\"Healthcheck\":{\"Test\":[\"CMD\",\"/freellmapi\",\"healthcheck\"],\"Interval\":30000000000,\"Timeout\":5000000000,\"Retries\":3},\
\"Labels\":{\"org.opencontainers.image.title\":\"freellmapi\",\"org.opencontainers.image.version\":\"$version\"}},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$diff_id\"]},\
\"history\":[{\"created\":\"$created\",\"created_by\":\"cross/image.sh: the static $arch binary, its vocabularies and /data\"}]}"
    read -r config_digest config_size < <(printf '%s' "$config" | blob)

    manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$layer_digest\",\"size\":$layer_size}]}"
    read -r manifest_digest manifest_size < <(printf '%s' "$manifest" | blob)
    manifests+=("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$manifest_digest\",\"size\":$manifest_size,\"platform\":{$platform}}")
    say "$arch: layer $(( layer_size / 1024 )) KiB compressed ($layer_digest)"
done

index="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[$(IFS=,; echo "${manifests[*]}")]}"
read -r index_digest index_size < <(printf '%s' "$index" | blob)
printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$index_digest" "$index_size" "$version" > "$layout/index.json"
archive="$out/freellmapi-$version.oci.tar"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$archive" .
say "image index $index_digest"
echo "$archive"
