#!/usr/bin/env bash
# Build BVLC Caffe (tools + pycaffe) from Debian's source package and install it into a prefix.
#
# One script for every place Caffe is needed: `make setup` on a bare Debian 12 machine (developers,
# CI), docker/Dockerfile.cpu and docker/Dockerfile (CUDA). It is idempotent: the recipe (this file,
# the patches and the options below) is hashed into $CAFFE_ROOT/.recipe, and a second run with the
# same recipe and a complete install does nothing.
#
# Source: Debian 11 (bullseye) source package caffe 1.0.0+git20180821.99bd997-8, i.e. BVLC master at
# commit 99bd997 plus Debian's patches (OpenCV 4 among them). It is fetched with a private apt
# configuration (own sources list, state and cache under a temporary folder); the mirror URI is read
# from this machine's own Debian sources, which are never edited. sha256 is checked before unpacking.
#
# Usage: docker/build_caffe.sh [--install-deps | --deps-only] [--gpu] [--prefix DIR] [--python PY] [--jobs N]
#   CAFFE_ROOT     install prefix (default: <checkout>/.caffe); --prefix wins
#   PYTHON         Python with numpy that pycaffe is built for (default: <checkout>/.venv/bin/python)
#   CAFFE_SRC_CACHE folder keeping the downloaded source files (default: $CAFFE_ROOT/../.caffe-src)
#   CUDA_ARCH_BIN  with --gpu: CUDA architectures (default "70 80 86 90", PTX for the last)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
checkout="$(cd "$here/.." && pwd)"

prefix="${CAFFE_ROOT:-$checkout/.caffe}"
python_exe="${PYTHON:-$checkout/.venv/bin/python}"
jobs="$(nproc)"
gpu=0
install_deps=0
deps_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --install-deps) install_deps=1 ;;
    --deps-only) install_deps=1; deps_only=1 ;;
    --gpu) gpu=1 ;;
    --prefix) prefix="$2"; shift ;;
    --python) python_exe="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build_caffe.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

CAFFE_VERSION="1.0.0+git20180821.99bd997-8"
ORIG_TAR="caffe_1.0.0+git20180821.99bd997.orig.tar.gz"
ORIG_SHA="e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c"
DEB_TAR="caffe_${CAFFE_VERSION}.debian.tar.xz"
DEB_SHA="07cf073227494a6b07234e40cb5df91db566616593eef9baafdc4d06ad159f21"
DSC="caffe_${CAFFE_VERSION}.dsc"
DSC_SHA="c492f4893fc1ba1fb514b2d9b4763bc78dc93571ea24adc6e604eccbb93cdd64"
cuda_arch="${CUDA_ARCH_BIN:-70 80 86 90}"

log() { printf '[build_caffe] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- dependencies
if [ "$install_deps" = 1 ]; then
  mapfile -t pkgs < <(grep -v '^\s*#' "$here/apt-packages.txt" | grep -v '^\s*$')
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    log "Debian packages: all present"
  fi
  [ "$deps_only" = 1 ] && exit 0
fi

[ -x "$python_exe" ] && "$python_exe" -c "import numpy" 2>/dev/null || {
  log "$python_exe cannot import numpy: pycaffe needs a Python with numpy (make setup creates .venv first)"; exit 1; }

# ---------------------------------------------------------------- recipe and skip
recipe_hash() {
  {
    cat "$0"
    cat "$here"/patches/*.patch
    # pycaffe depends on the Python ABI and NumPy's C API, not on where the interpreter lives:
    # checkouts and worktrees with their own .venv share one recipe
    echo "gpu=$gpu arch=$cuda_arch python=$("$python_exe" -c 'import sys, numpy; print(sys.implementation.cache_tag, numpy.__version__)')"
  } | sha256sum | cut -d' ' -f1
}
recipe="$(recipe_hash)"
installed_ok() {
  [ -f "$prefix/.recipe" ] && [ "$(cat "$prefix/.recipe")" = "$recipe" ] &&
    [ -x "$prefix/bin/caffe" ] && [ -x "$prefix/bin/convert_imageset" ] &&
    [ -x "$prefix/bin/compute_image_mean" ] && [ -f "$prefix/python/caffe/_caffe.so" ] &&
    [ -f "$prefix/python/caffe/proto/caffe_pb2.py" ]
}
if installed_ok; then
  log "Caffe already installed in $prefix with this recipe ($recipe): nothing to do"
  exit 0
fi

# ---------------------------------------------------------------- source
src_cache="${CAFFE_SRC_CACHE:-$(dirname "$prefix")/.caffe-src}"
mkdir -p "$src_cache"
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if ! sha_ok "$src_cache/$ORIG_TAR" "$ORIG_SHA" || ! sha_ok "$src_cache/$DEB_TAR" "$DEB_SHA" || ! sha_ok "$src_cache/$DSC" "$DSC_SHA"; then
  # The mirror URI this machine already uses for Debian (deb822 or one-line format).
  mirror=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mirror="$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i !~ /security/) {print $i; exit}}' "$f")"
    [ -n "$mirror" ] && break
  done
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror="$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)"
  fi
  [ -n "$mirror" ] || { log "cannot find a Debian mirror URI in /etc/apt/sources.list(.d)"; exit 1; }
  log "fetching Debian source package caffe=$CAFFE_VERSION (suite bullseye) from $mirror"
  apt_tmp="$(mktemp -d)"
  trap 'rm -rf "$apt_tmp"' EXIT
  mkdir -p "$apt_tmp/lists/partial" "$apt_tmp/cache/archives/partial" "$apt_tmp/etc"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb-src [signed-by=$keyring] $mirror bullseye main" > "$apt_tmp/etc/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_tmp/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$apt_tmp/lists" -o "Dir::Cache=$apt_tmp/cache"
            -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  apt-get "${apt_opts[@]}" update -qq || {
    log "could not reach the Debian archive at $mirror (offline?). Put $ORIG_TAR, $DEB_TAR and $DSC into $src_cache and rerun."
    exit 1
  }
  (cd "$src_cache" && apt-get "${apt_opts[@]}" source --download-only "caffe=$CAFFE_VERSION")
fi
sha_ok "$src_cache/$ORIG_TAR" "$ORIG_SHA" || { log "sha256 mismatch: $src_cache/$ORIG_TAR (expected $ORIG_SHA)"; exit 1; }
sha_ok "$src_cache/$DEB_TAR" "$DEB_SHA" || { log "sha256 mismatch: $src_cache/$DEB_TAR (expected $DEB_SHA)"; exit 1; }
sha_ok "$src_cache/$DSC" "$DSC_SHA" || { log "sha256 mismatch: $src_cache/$DSC (expected $DSC_SHA)"; exit 1; }
log "source verified (sha256) in $src_cache"

build_root="$(dirname "$prefix")/.caffe-build"
srcdir="$build_root/caffe-src"
rm -rf "$srcdir"
mkdir -p "$build_root"
dpkg-source --no-check -x "$src_cache/$DSC" "$srcdir" >/dev/null
for p in "$here"/patches/*.patch; do
  log "applying project patch $(basename "$p")"
  patch -d "$srcdir" -p1 --forward < "$p"
done

# ---------------------------------------------------------------- configure and build
builddir="$build_root/build-$([ "$gpu" = 1 ] && echo gpu || echo cpu)"
cmake_opts=(
  -DCMAKE_BUILD_TYPE=Release
  -DBLAS=Open -DUSE_LEVELDB=ON -DUSE_LMDB=ON -DUSE_OPENCV=ON -DUSE_CUDNN=OFF
  -DBUILD_python=ON -DBUILD_python_layer=ON -Dpython_version=3 -DBUILD_docs=OFF
  -DPYTHON_EXECUTABLE="$python_exe"
)
if [ "$gpu" = 1 ]; then
  cmake_opts+=(-DCPU_ONLY=OFF -DCUDA_ARCH_NAME=Manual -DCUDA_ARCH_BIN="$cuda_arch" -DCUDA_ARCH_PTX="${cuda_arch##* }")
else
  cmake_opts+=(-DCPU_ONLY=ON)
fi
log "configuring in $builddir (gpu=$gpu)"
cmake -S "$srcdir" -B "$builddir" "${cmake_opts[@]}" > "$build_root/cmake.log" 2>&1 || {
  tail -40 "$build_root/cmake.log" >&2; log "cmake failed (full log: $build_root/cmake.log)"; exit 1; }
log "compiling with $jobs jobs (log: $build_root/make.log)"
cmake --build "$builddir" -j "$jobs" --target caffe caffe.bin convert_imageset compute_image_mean pycaffe \
  > "$build_root/make.log" 2>&1 || { tail -40 "$build_root/make.log" >&2; log "build failed"; exit 1; }

# ---------------------------------------------------------------- install (into a temp name, then rename)
stage="$prefix.partial"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/lib" "$stage/python"
cp -a "$builddir"/lib/libcaffe.so* "$stage/lib/"
cp -L "$builddir/tools/caffe" "$builddir/tools/convert_imageset" "$builddir/tools/compute_image_mean" "$stage/bin/"
cp -rL "$srcdir/python/caffe" "$stage/python/caffe"
rm -rf "$stage/python/caffe/test"
cp -L "$builddir/lib/_caffe.so" "$stage/python/caffe/_caffe.so"
mkdir -p "$stage/python/caffe/proto"
cp -L "$builddir"/include/caffe/proto/caffe_pb2.py "$stage/python/caffe/proto/"
touch "$stage/python/caffe/proto/__init__.py"
# The tools and _caffe.so find libcaffe through $ORIGIN-relative paths, not the build folder.
for exe in "$stage"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$exe"; done
patchelf --set-rpath '$ORIGIN/../../lib' "$stage/python/caffe/_caffe.so"
echo "$recipe" > "$stage/.recipe"
rm -rf "$prefix"
mv "$stage" "$prefix"
log "installed into $prefix: bin/{caffe,convert_imageset,compute_image_mean}, lib/libcaffe.so, python/caffe"
