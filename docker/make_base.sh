#!/usr/bin/env bash
# Build the Debian 12 base image locally, without a registry: debootstrap from this machine's own
# Debian mirror, then `docker import`, tagged under the project's own name (jpi-dl-base:bookworm;
# docker/images.sh passes it to docker/Dockerfile as BASE_IMAGE), never as Docker Hub's debian:12.
#
# For hospitals and HPC centres that cannot reach Docker Hub. Carried into the image, so that apt
# inside behaves as on this machine:
#   - the Debian mirrors (docker/debian_mirror.sh reads /etc/apt/sources.list(.d), never edited),
#     without user:password@ in their URLs;
#   - the CA certificates: /usr/local/share/ca-certificates/*.crt and the bundle
#     /etc/ssl/certs/ca-certificates.crt.
# This machine's package-index settings (apt's Acquire:: proxies and snapshot validity, pip's
# /etc/pip.conf, /etc/xdg/pip/ and PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT,
# PIP_DEFAULT_TIMEOUT) are NOT put into the image: docker/site_settings.sh writes them, credentials
# removed, to docker/site.env, which docker/images.sh passes as build arguments (build stage only).
#
# Usage: docker/make_base.sh [--tag jpi-dl-base:bookworm] [--suite bookworm]   (root; installs debootstrap)
set -euo pipefail

tag="jpi-dl-base:bookworm"
suite="bookworm"
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift ;;
    --suite) suite="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "make_base.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[docker-base] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }
docker info >/dev/null 2>&1 || { log "no Docker daemon answers (docker/daemon.sh start)"; exit 1; }

# the mirrors as apt reads them; user:password@ is never written into the image
no_credentials() { sed -E 's#([A-Za-z][A-Za-z0-9+.-]*://)[^/@[:space:]]+@#\1#g'; }
mirror="$(bash "$(dirname "$0")/debian_mirror.sh")"
security="$(bash "$(dirname "$0")/debian_mirror.sh" security)"
mirror_in_image="$(printf '%s' "$mirror" | no_credentials)"
security_in_image="$(printf '%s' "$security" | no_credentials)"
[ "$mirror_in_image$security_in_image" = "$mirror$security" ] || log "credentials removed from the mirror URLs written into the image"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }

work="$(mktemp -d /var/tmp/jpi-dl-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
log "debootstrap --variant=minbase $suite from $mirror (log: $work/debootstrap.log)"
debootstrap --variant=minbase --keyring="$keyring" "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2; cp "$work/debootstrap.log" /tmp/jpi-dl-debootstrap.log
  log "debootstrap failed (log kept in /tmp/jpi-dl-debootstrap.log)"; exit 1; }

# apt sources: the same mirrors as this machine
rm -f "$root/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' "$mirror_in_image" "$suite" "$suite" "$keyring"
  [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' "$security_in_image" "$suite" "$keyring"
} > "$root/etc/apt/sources.list.d/debian.sources"
# this machine's package-index settings: build arguments (docker/site.env), never in the image
bash "$(dirname "$0")/site_settings.sh" > "$(dirname "$0")/site.env"
log "package-index settings for the build stage: $(dirname "$0")/site.env ($(wc -l < "$(dirname "$0")/site.env") setting(s))"
# keep images small: no apt caches, no translations (as the Docker Hub debian images do)
cat > "$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' > "$root/etc/apt/apt.conf.d/docker-no-languages"
# CA certificates: extra ones survive a later `update-ca-certificates`; the bundle serves until then
mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
for crt in /usr/local/share/ca-certificates/*.crt; do
  [ -f "$crt" ] && cp "$crt" "$root/usr/local/share/ca-certificates/" && log "CA certificate carried: $crt"
done
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
changes=(--change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8')
# no machine identity, logs or caches in the image
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
: > "$root/etc/machine-id"
# a hostname and resolver come from Docker at run time
: > "$root/etc/hostname"; : > "$root/etc/resolv.conf"

log "docker import as $tag"
tar --numeric-owner -C "$root" -c . | docker import "${changes[@]}" \
  --message "debootstrap --variant=minbase $suite from $mirror (docker/make_base.sh)" - "$tag" >/dev/null
log "base image $tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
