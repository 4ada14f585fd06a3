#!/usr/bin/env bash
# Checks a built .deb: files, owners and modes (dpkg-deb -c), control fields, conffiles and
# maintainer scripts. Exits non-zero with the first problem.
#
#   cross/check-deb.sh target/debian/freellmapi_<version>_<arch>.deb
set -euo pipefail
deb="${1:?usage: cross/check-deb.sh file.deb}"
fail() { echo "check-deb: $deb: $*" >&2; exit 1; }
listing="$(dpkg-deb -c "$deb")"
expect() { # mode owner path
    echo "$listing" | awk -v m="$1" -v o="$2" -v p="./$3" '$1==m && $2==o && $6==p {found=1} END {exit !found}' \
        || fail "expected $1 $2 $3 in:\n$listing"
}
expect -rwxr-xr-x 0/0 usr/bin/freellmapi
expect -rw-r--r-- 0/0 lib/systemd/system/freellmapi.service
expect -rw-r----- 0/0 etc/default/freellmapi
expect -rw-r--r-- 0/0 usr/share/freellmapi/nginx-freellmapi.conf
expect -rw-r--r-- 0/0 usr/share/doc/freellmapi/copyright
expect -rw-r--r-- 0/0 usr/share/freellmapi/vocab/cl100k_base.tiktoken
expect -rw-r--r-- 0/0 usr/share/freellmapi/vocab/o200k_base.tiktoken
expect -rw-r--r-- 0/0 usr/share/freellmapi/vocab/NOTICE
if echo "$listing" | awk '$2!="0/0" {bad=1} END {exit !bad}'; then fail "files not owned by root"; fi
if grep -q "/var/lib/freellmapi" <<< "$listing"; then fail "/var/lib/freellmapi must be made by postinst (0700, freellmapi)"; fi

info="$(dpkg-deb -f "$deb" Package Architecture Depends)"
grep -q '^Package: freellmapi$' <<< "$info" || fail "package name: $info"
grep -q '^Depends:.*adduser' <<< "$info" || fail "Depends lacks adduser: $info"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
dpkg-deb -e "$deb" "$work"
grep -qx '/etc/default/freellmapi' "$work/conffiles" || fail "/etc/default/freellmapi is not a conffile"
for s in postinst prerm postrm; do
    [ -x "$work/$s" ] || fail "$s missing or not executable"
    sh -n "$work/$s" || fail "$s has a syntax error"
done
grep -q 'install -d -m 0700 -o freellmapi -g freellmapi /var/lib/freellmapi' "$work/postinst" || fail "postinst does not create the private state dir"
grep -q 'adduser --system' "$work/postinst" || fail "postinst does not create the system user"
grep -q 'dpkg-statoverride --update --add root freellmapi 0640 /etc/default/freellmapi' "$work/postinst" \
    || fail "postinst does not make /etc/default/freellmapi root:freellmapi 0640"
grep -q 'dpkg-statoverride --remove /etc/default/freellmapi' "$work/postrm" || fail "postrm does not drop the statoverride on purge"
grep -q 'deb-systemd-helper enable freellmapi.service' "$work/postinst" || fail "postinst does not enable the service"
unit="$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./lib/systemd/system/freellmapi.service)"
for want in 'Type=notify' 'Restart=on-failure' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
            'PrivateTmp=yes' 'ReadWritePaths=/var/lib/freellmapi' 'MemoryMax=64M' 'CapabilityBoundingSet=$' 'User=freellmapi'; do
    grep -q "^$want" <<< "$unit" || fail "the unit lacks $want"
done
echo "check-deb: $deb ok ($(dpkg-deb -f "$deb" Architecture), $(stat -c %s "$deb") bytes)"
