#!/usr/bin/env bash
# This machine's package-index settings as build arguments of docker/Dockerfile's build stage, one
# KEY=VALUE a line on stdout (docker/make_base.sh writes them to docker/site.env; docker/images.sh
# passes each as --build-arg). They never enter an image's files or environment.
#
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_CERT, PIP_DEFAULT_TIMEOUT: from the
#     environment, else from pip's configuration file ($JPI_PIP_CONF, default /etc/pip.conf, else
#     /etc/xdg/pip/pip.conf; its [global] and [install] sections);
#   APT_OPTIONS: "-o Acquire::...=VALUE ..." from the one-line `Acquire::... "VALUE";` statements of
#     the apt.conf.d files that no package owns ($JPI_APT_CONF_DIR, default /etc/apt/apt.conf.d):
#     proxies, certificates, validity of snapshot mirrors.
#
# Credentials (user:password@ in a URL) are removed from every value, with a note on stderr: give
# an index that needs them to the build some other way (a netrc-less proxy, BuildKit secrets).
set -euo pipefail
log() { printf '[site-settings] %s\n' "$*" >&2; }

strip_credentials() {   # stdin -> stdout, userinfo@ removed from scheme://userinfo@host
  sed -E 's#([A-Za-z][A-Za-z0-9+.-]*://)[^/@[:space:]"]+@#\1#g'
}

emit() {   # emit KEY VALUE: the line, credentials removed
  local key="$1" value="$2" clean
  [ -n "$value" ] || return 0
  clean="$(printf '%s' "$value" | strip_credentials)"
  [ "$clean" = "$value" ] || log "credentials removed from $key"
  printf '%s=%s\n' "$key" "$clean"
}

pip_conf="${JPI_PIP_CONF:-}"
if [ -z "$pip_conf" ]; then
  for f in /etc/pip.conf /etc/xdg/pip/pip.conf; do [ -f "$f" ] && { pip_conf="$f"; break; }; done
fi
declare -A from_conf=()
if [ -n "$pip_conf" ] && [ -f "$pip_conf" ]; then
  while IFS='=' read -r key value; do
    from_conf["$key"]="$value"
  done < <(python3 - "$pip_conf" <<'PY'
import configparser, sys
cp = configparser.RawConfigParser(strict=False)
cp.read(sys.argv[1])
for section in ("global", "install"):
    if cp.has_section(section):
        for key in ("index-url", "extra-index-url", "trusted-host", "cert", "timeout"):
            if cp.has_option(section, key):
                print(f"{key}={' '.join(cp.get(section, key).split())}")
PY
  )
  log "pip settings read from $pip_conf"
fi
for pair in PIP_INDEX_URL:index-url PIP_EXTRA_INDEX_URL:extra-index-url PIP_TRUSTED_HOST:trusted-host \
            PIP_CERT:cert PIP_DEFAULT_TIMEOUT:timeout; do
  var="${pair%%:*}"; key="${pair#*:}"
  emit "$var" "${!var:-${from_conf[$key]:-}}"
done

apt_dir="${JPI_APT_CONF_DIR:-/etc/apt/apt.conf.d}"
opts=()
for f in "$apt_dir"/*; do
  [ -f "$f" ] || continue
  ! dpkg -S "$f" >/dev/null 2>&1 || continue   # a package's own file: the same in the image
  while IFS= read -r line; do
    if [[ "$line" =~ ^[[:space:]]*(Acquire::[A-Za-z0-9:_.-]+)[[:space:]]+\"([^\"[:space:]]*)\"[[:space:]]*\;[[:space:]]*$ ]]; then
      opts+=("-o ${BASH_REMATCH[1]}=${BASH_REMATCH[2]}")
    elif [[ "$line" == *Acquire* ]]; then
      log "$f: not carried (only one-line Acquire::KEY \"VALUE\"; statements are): $line"
    fi
  done < "$f"
done
[ "${#opts[@]}" = 0 ] || emit APT_OPTIONS "${opts[*]}"
