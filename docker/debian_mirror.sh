#!/usr/bin/env bash
# Print the Debian mirror URI this machine's apt already uses, read from /etc/apt/sources.list and
# /etc/apt/sources.list.d (deb822 .sources and one-line .list files), which are never edited.
#   docker/debian_mirror.sh            the main archive (the first URI not naming "security")
#   docker/debian_mirror.sh security   the security archive, if one is listed (else nothing)
# Exits 1 when no main archive is listed. Used by build_caffe.sh and make_base.sh.
set -euo pipefail

uris() {
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' "$f"
  done
  return 0
}

if [ "${1:-}" = security ]; then
  uris | grep -m1 'security' || true
else
  uris | grep -v 'security' | grep -m1 . || { echo "no Debian mirror URI in /etc/apt/sources.list(.d)" >&2; exit 1; }
fi
