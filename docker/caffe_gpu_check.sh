#!/usr/bin/env bash
# `make caffe-gpu-check`: compile the CUDA build of Caffe here (no GPU needed) with
# docker/build_caffe.sh --gpu into .caffe-gpu/, then check with `cuobjdump --list-elf` and
# `--list-ptx` that libcaffe.so holds machine code for every requested architecture and PTX for
# the last. Prints a table and the times; exits non-zero if an architecture is missing.
#
# Usage: docker/caffe_gpu_check.sh [--python PY] [--list-only]   (CUDA_ARCH_BIN, CUDA_TOOLKIT as build_caffe.sh)
#   --list-only  check the .caffe-gpu/ already there without (re)building it
set -euo pipefail
cd "$(dirname "$0")/.."

python_exe="$PWD/.venv/bin/python"
list_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python_exe="$2"; shift ;;
    --list-only) list_only=1 ;;
    *) echo "caffe_gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
toolkit="${CUDA_TOOLKIT:-wheels}"
if [ "$toolkit" = wheels ]; then arch="${CUDA_ARCH_BIN:-75 80 86 90}"; else arch="${CUDA_ARCH_BIN:-70 75 80 86 90}"; fi
prefix="$PWD/.caffe-gpu"
# cuobjdump: from the toolkit, else from its PyPI wheel (13.2 is the oldest on PyPI; it reads
# the CUDA 13.0 and 11.8 fat binaries alike)
CUOBJDUMP_WHEEL="nvidia-cuda-cuobjdump==13.2.51"
log() { printf '[caffe-gpu-check] %s\n' "$*" >&2; }

t0=$SECONDS
if [ "$list_only" = 0 ]; then
  CAFFE_ROOT="$prefix" CUDA_ARCH_BIN="$arch" CUDA_TOOLKIT="$toolkit" \
    nice -n 10 bash docker/build_caffe.sh --gpu --python "$python_exe"
fi
build_s=$((SECONDS - t0))

cuobjdump=""
for c in "$toolkit/bin/cuobjdump" /usr/lib/nvidia-cuda-toolkit/bin/cuobjdump; do
  [ -x "$c" ] && cuobjdump="$c" && break
done
if [ -z "$cuobjdump" ]; then
  dir="$PWD/.cuda13/cuobjdump"
  [ -x "$dir/nvidia/cu13/bin/cuobjdump" ] || {
    log "installing $CUOBJDUMP_WHEEL into $dir"
    "$python_exe" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" "$CUOBJDUMP_WHEEL" >&2; }
  cuobjdump="$dir/nvidia/cu13/bin/cuobjdump"
fi

lib="$(ls "$prefix"/lib/libcaffe.so.*.*.* | head -1)"
elf="$("$cuobjdump" --list-elf "$lib" | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' ')"
ptx="$("$cuobjdump" --list-ptx "$lib" | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' ')"
missing=0
printf '\n| architecture | machine code (ELF) | PTX |\n|---|---|---|\n'
for a in $arch; do
  e=no; p=-
  grep -qw "sm_$a" <<< "$elf" && e=yes || missing=1
  [ "$a" != "${arch##* }" ] || { grep -qw "sm_$a" <<< "$ptx" && p=yes || { p=no; missing=1; }; }
  printf '| sm_%s | %s | %s |\n' "$a" "$e" "$p"
done
printf '\nlibcaffe: %s (%s); cubins in it: %s; toolkit %s; recipe %s; build step %d s\n' \
  "$lib" "$(du -h "$lib" | cut -f1)" "$("$cuobjdump" --list-elf "$lib" | wc -l)" "$toolkit" \
  "$(cut -c1-16 "$prefix/.recipe")" "$build_s"
[ "$missing" = 0 ] || { log "an architecture is missing from $lib"; exit 1; }
log "every requested architecture is in libcaffe.so"
