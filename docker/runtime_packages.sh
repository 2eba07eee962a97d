#!/usr/bin/env bash
# Print the Debian packages that a Caffe install's programs and libraries load at run time, one a
# line: every library `ldd` resolves for CAFFE_ROOT's bin/, lib/ and pycaffe's _caffe.so, mapped to
# its package with `dpkg -S`. Libraries inside the install (libcaffe, the copied CUDA libraries) are
# not packages and are left out. The Dockerfile's runtime stage installs exactly these.
#
# Usage: docker/runtime_packages.sh [CAFFE_ROOT]
set -euo pipefail

root="${1:-${CAFFE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.caffe}}"
files=("$root"/bin/* "$root"/python/caffe/_caffe.so)
for f in "$root"/lib/*.so*; do [ -L "$f" ] || files+=("$f"); done
# Caffe's test kit (build_caffe.sh --tests, for `make caffe-selftest`): its binary's libraries, and
# the packages its suites run (apt-packages-selftest.txt: graphviz's `dot` for pycaffe's test_draw)
kit=0
if [ -x "$root/test/test.testbin" ]; then kit=1; files+=("$root/test/test.testbin"); fi

root_real="$(realpath "$root")"
mapfile -t libs < <(ldd "${files[@]}" | awk '/=> \// {print $3}' | xargs -r realpath | sort -u | grep -v "^$root_real/")
# Debian 12 merged /lib into /usr/lib, but dpkg records some files under /lib: ask for both names.
owners="$(dpkg -S "${libs[@]}" "${libs[@]#/usr}" 2>/dev/null || true)"
for lib in "${libs[@]}"; do
  grep -qF -e ": $lib" -e ": ${lib#/usr}" <<< "$owners" || { echo "runtime_packages.sh: no Debian package owns $lib" >&2; exit 1; }
done
{
  cut -d: -f1 <<< "$owners"
  [ "$kit" = 0 ] || grep -v '^\s*#' "$(dirname "${BASH_SOURCE[0]}")/apt-packages-selftest.txt" | grep -v '^\s*$'
} | sort -u
