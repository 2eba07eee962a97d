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
# With --gpu, Caffe is built with CUDA (no cuDNN) and the CUDA runtime libraries it links
# (cuBLAS, cuRAND, cudart if shared) are copied into $CAFFE_ROOT/lib, so the install is
# self-contained; at run time only the NVIDIA driver is needed. No GPU is needed to compile.
# The toolkit (CUDA_TOOLKIT):
#   wheels  (default) CUDA 13.0 from PyPI wheels (nvidia-cuda-nvcc, -crt, nvvm, -runtime, -cccl,
#           cublas, curand), pip-installed into CUDA_WHEELS_DIR and assembled into a toolkit folder
#           with the unversioned library names FindCUDA looks for. CUDA 13 has no sm_70 (Volta).
#   debian  Debian 12's non-free nvidia-cuda-toolkit 11.8 with g++-11 as host compiler (both must be
#           installed: the CUDA Dockerfile does it with --build-arg CUDA_TOOLKIT=debian); has sm_70.
#   DIR     an installed toolkit (bin/nvcc, include/, lib64/), e.g. /usr/local/cuda.
#
# Usage: docker/build_caffe.sh [--install-deps | --deps-only] [--gpu] [--tests] [--prefix DIR] [--python PY] [--jobs N]
#   --tests        also build Caffe's own C++ test binary (target test.testbin, gtest) in the same build
#                  folder and CMake configuration, and install the test kit into $CAFFE_ROOT/test (see the
#                  "tests" block below; `make caffe-selftest` runs it); with --deps-only, also the
#                  Debian packages of docker/apt-packages-selftest.txt
#   CAFFE_ROOT     install prefix (default: <checkout>/.caffe); --prefix wins
#   PYTHON         Python with numpy that pycaffe is built for (default: <checkout>/.venv/bin/python)
#   CAFFE_SRC_CACHE folder keeping the downloaded source files (default: $CAFFE_ROOT/../.caffe-src)
#   CUDA_TOOLKIT   with --gpu: wheels (default), debian, or a toolkit folder (see above)
#   CUDA_ARCH_BIN  with --gpu: CUDA architectures, PTX for the last (default "75 80 86 90" for
#                  wheels, "70 75 80 86 90" for debian and a folder)
#   CUDA_WHEELS_DIR with --gpu and wheels: where the wheels go (default: $CAFFE_ROOT/../.cuda13)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
checkout="$(cd "$here/.." && pwd)"

prefix="${CAFFE_ROOT:-$checkout/.caffe}"
python_exe="${PYTHON:-$checkout/.venv/bin/python}"
jobs="$(nproc)"
gpu=0
install_deps=0
deps_only=0
tests=0
while [ $# -gt 0 ]; do
  case "$1" in
    --install-deps) install_deps=1 ;;
    --deps-only) install_deps=1; deps_only=1 ;;
    --gpu) gpu=1 ;;
    --tests) tests=1 ;;
    --prefix) prefix="$2"; shift ;;
    --python) python_exe="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
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
cuda_toolkit="${CUDA_TOOLKIT:-wheels}"
if [ "$cuda_toolkit" = wheels ]; then cuda_arch="${CUDA_ARCH_BIN:-75 80 86 90}"; else cuda_arch="${CUDA_ARCH_BIN:-70 75 80 86 90}"; fi
# CUDA 13.0 (update 2 compiler, 13.0-series libraries): the versions this recipe was built with
CUDA13_WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
               nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14
               nvidia-curand==10.4.0.35)

log() { printf '[build_caffe] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- dependencies
if [ "$install_deps" = 1 ] && [ "${JPI_RUNTIME_IMAGE:-0}" = 1 ]; then
  log "runtime image: its Debian packages were fixed when it was built; none installed"
  [ "$deps_only" = 1 ] && exit 0
elif [ "$install_deps" = 1 ]; then
  pkg_lists=("$here/apt-packages.txt")
  [ "$tests" = 1 ] && pkg_lists+=("$here/apt-packages-selftest.txt")
  mapfile -t pkgs < <(cat "${pkg_lists[@]}" | grep -v '^\s*#' | grep -v '^\s*$')
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    sudo_cmd=""
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || {
        log "missing Debian packages: ${missing[*]} (not root and no sudo: install them as root with apt-get install)"; exit 1; }
      sudo_cmd="sudo"
    fi
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
    [ "$gpu" = 0 ] || echo "toolkit=$cuda_toolkit wheels=${CUDA13_WHEELS[*]}"
    echo "gpu=$gpu arch=$cuda_arch python=$("$python_exe" -c 'import sys, numpy; print(sys.implementation.cache_tag, numpy.__version__)')"
  } | sha256sum | cut -d' ' -f1
}
recipe="$(recipe_hash)"
build_root="$(dirname "$prefix")/.caffe-build"
srcdir="$build_root/caffe-src"
builddir="$build_root/build-$([ "$gpu" = 1 ] && echo gpu || echo cpu)"
installed_ok() {
  [ -f "$prefix/.recipe" ] && [ "$(cat "$prefix/.recipe")" = "$recipe" ] &&
    [ -x "$prefix/bin/caffe" ] && [ -x "$prefix/bin/convert_imageset" ] &&
    [ -x "$prefix/bin/compute_image_mean" ] && [ -f "$prefix/python/caffe/_caffe.so" ] &&
    [ -f "$prefix/python/caffe/proto/caffe_pb2.py" ]
}

# ---------------------------------------------------------------- tests (--tests): Caffe's own suites
# Caffe's C++ tests (target test.testbin, gtest) are a target of the same build folder and the same
# CMake configuration as the installed Caffe, never a second one. They are installed as the test kit
# $prefix/test: test.testbin, whose run path starts with $prefix/lib (the installed libcaffe is what
# is tested), and the files of the source tree the C++ and pycaffe suites open by paths relative to
# the source root, in the source tree's layout: src/caffe/test/test_data, examples/images, every
# *.prototxt of examples/ and models/ (pycaffe's test_draw draws them all) and python/caffe/test.
# docker/caffe_selftest.py runs the suites with the kit as working folder, as Caffe's own
# `make runtest` runs from the source root; the kit needs no build folder (images delete it).
tests_installed_ok() {
  [ -x "$prefix/test/test.testbin" ] && [ -f "$prefix/test/.recipe" ] &&
    [ "$(cat "$prefix/test/.recipe")" = "$recipe" ]
}
build_tree_current() {   # the build folder still holds the configuration of the installed Caffe
  [ -f "$builddir/.recipe" ] && [ "$(cat "$builddir/.recipe")" = "$recipe" ] && [ -d "$srcdir/src/caffe/test" ]
}
build_tests() {
  log "compiling Caffe's C++ tests (test.testbin) with $jobs jobs (log: $build_root/make-tests.log)"
  cmake --build "$builddir" -j "$jobs" --target test.testbin > "$build_root/make-tests.log" 2>&1 || {
    tail -40 "$build_root/make-tests.log" >&2; log "building test.testbin failed"; exit 1; }
}
stage_tests() {   # stage_tests DEST: write the test kit into the new folder DEST
  local dest="$1" rpath entry entries
  mkdir -p "$dest/src/caffe/test" "$dest/examples" "$dest/python/caffe"
  cp -L "$builddir/test/test.testbin" "$dest/test.testbin"
  # $prefix/lib first; library folders outside the build folder (CUDA's, on --gpu builds) are kept
  rpath='$ORIGIN/../lib'
  IFS=: read -r -a entries <<< "$(patchelf --print-rpath "$dest/test.testbin")"
  for entry in "${entries[@]}"; do
    case "$entry" in ""|"$build_root"*) ;; *) rpath="$rpath:$entry" ;; esac
  done
  patchelf --set-rpath "$rpath" "$dest/test.testbin"
  cp -rL "$srcdir/src/caffe/test/test_data" "$dest/src/caffe/test/"
  cp -rL "$srcdir/examples/images" "$dest/examples/"
  (cd "$srcdir" && find examples models -name '*.prototxt' -exec cp --parents {} "$dest/" \;)
  cp -rL "$srcdir/python/caffe/test" "$dest/python/caffe/"
  echo "gpu=$gpu" > "$dest/build.env"
  echo "$recipe" > "$dest/.recipe"
}

if installed_ok; then
  if [ "$tests" = 0 ] || tests_installed_ok; then
    log "Caffe already installed in $prefix with this recipe ($recipe): nothing to do"
    exit 0
  fi
  if build_tree_current; then
    build_tests
    rm -rf "$prefix/test.partial"
    stage_tests "$prefix/test.partial"
    rm -rf "$prefix/test"
    mv "$prefix/test.partial" "$prefix/test"
    log "installed Caffe's test kit into $prefix/test"
    exit 0
  fi
  if [ "${JPI_RUNTIME_IMAGE:-0}" = 1 ]; then
    log "this runtime image holds Caffe but not its test kit ($prefix/test) and no compiler: build the image with the kit (CAFFE_BUILD_FLAGS=--tests, README \"How we know this Caffe is Caffe\")"
    exit 1
  fi
  log "the build folder $builddir is not the one of the installed Caffe: rebuilding Caffe with its tests"
fi
if [ "${JPI_RUNTIME_IMAGE:-0}" = 1 ]; then
  log "this runtime image holds no Caffe built with this recipe (options: ${CAFFE_BUILD_FLAGS:-none}, CUDA_TOOLKIT=$cuda_toolkit) and no compiler: build an image with those options (make docker-build)"
  exit 1
fi

# ---------------------------------------------------------------- source
src_cache="${CAFFE_SRC_CACHE:-$(dirname "$prefix")/.caffe-src}"
mkdir -p "$src_cache"
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if ! sha_ok "$src_cache/$ORIG_TAR" "$ORIG_SHA" || ! sha_ok "$src_cache/$DEB_TAR" "$DEB_SHA" || ! sha_ok "$src_cache/$DSC" "$DSC_SHA"; then
  mirror="$(bash "$here/debian_mirror.sh")" || { log "cannot find a Debian mirror URI in /etc/apt/sources.list(.d)"; exit 1; }
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

rm -rf "$srcdir"
mkdir -p "$build_root"
dpkg-source --no-check -x "$src_cache/$DSC" "$srcdir" >/dev/null
for p in "$here"/patches/*.patch; do
  log "applying project patch $(basename "$p")"
  patch -d "$srcdir" -p1 --forward < "$p"
done

# ---------------------------------------------------------------- CUDA toolkit (--gpu)
# Prints the toolkit root for FindCUDA (CUDA_TOOLKIT_ROOT_DIR).
cuda_toolkit_root() {
  case "$cuda_toolkit" in
    wheels)
      local dir="${CUDA_WHEELS_DIR:-$(dirname "$prefix")/.cuda13}"
      local stamp="$dir/.wheels"
      if [ "$(cat "$stamp" 2>/dev/null)" != "${CUDA13_WHEELS[*]}" ]; then
        log "installing the CUDA 13 toolkit wheels into $dir: ${CUDA13_WHEELS[*]}"
        rm -rf "$dir"
        "$python_exe" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir/site" \
          "${CUDA13_WHEELS[@]}" >&2
        echo "${CUDA13_WHEELS[*]}" > "$stamp"
      fi
      # The wheels ship only versioned .so names (libcublas.so.13); FindCUDA looks for
      # lib64/libcublas.so. Assemble a toolkit folder of links.
      local cu="$dir/site/nvidia/cu13" tk="$dir/toolkit"
      rm -rf "$tk"; mkdir -p "$tk/lib64"
      ln -s "$cu/bin" "$tk/bin"; ln -s "$cu/include" "$tk/include"; ln -s "$cu/nvvm" "$tk/nvvm"
      for lib in "$cu"/lib/*.so.* "$cu"/lib/*.a; do
        ln -s "$lib" "$tk/lib64/$(basename "$lib")"
        case "$lib" in *.so.*) b="$(basename "$lib")"; ln -sf "$b" "$tk/lib64/${b%%.so.*}.so" ;; esac
      done
      echo "$tk" ;;
    debian)
      [ -x /usr/lib/nvidia-cuda-toolkit/bin/nvcc ] && command -v g++-11 >/dev/null || {
        log "CUDA_TOOLKIT=debian needs Debian's non-free nvidia-cuda-toolkit and g++-11 (apt-get install nvidia-cuda-toolkit g++-11, with non-free in the sources)"
        exit 1; }
      echo /usr ;;
    *)
      [ -x "$cuda_toolkit/bin/nvcc" ] || { log "CUDA_TOOLKIT=$cuda_toolkit: no bin/nvcc there"; exit 1; }
      echo "$cuda_toolkit" ;;
  esac
}

# ---------------------------------------------------------------- configure and build
rm -f "$builddir/.recipe"
cmake_opts=(
  -DCMAKE_BUILD_TYPE=Release
  -DBLAS=Open -DUSE_LEVELDB=ON -DUSE_LMDB=ON -DUSE_OPENCV=ON -DUSE_CUDNN=OFF
  -DBUILD_python=ON -DBUILD_python_layer=ON -Dpython_version=3 -DBUILD_docs=OFF
  -DPYTHON_EXECUTABLE="$python_exe"
)
if [ "$gpu" = 1 ]; then
  cuda_root="$(cuda_toolkit_root)"
  log "CUDA toolkit: $cuda_toolkit ($cuda_root), architectures $cuda_arch, PTX ${cuda_arch##* }"
  cmake_opts+=(-DCPU_ONLY=OFF -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root"
               -DCUDA_ARCH_NAME=Manual -DCUDA_ARCH_BIN="$cuda_arch" -DCUDA_ARCH_PTX="${cuda_arch##* }")
  # CUDA 11.8 does not accept GCC 12 (Debian 12's default) as host compiler
  [ "$cuda_toolkit" != debian ] || cmake_opts+=(-DCUDA_HOST_COMPILER=/usr/bin/g++-11)
else
  cmake_opts+=(-DCPU_ONLY=ON)
fi
log "configuring in $builddir (gpu=$gpu)"
cmake -S "$srcdir" -B "$builddir" "${cmake_opts[@]}" > "$build_root/cmake.log" 2>&1 || {
  tail -40 "$build_root/cmake.log" >&2; log "cmake failed (full log: $build_root/cmake.log)"; exit 1; }
log "compiling with $jobs jobs (log: $build_root/make.log)"
cmake --build "$builddir" -j "$jobs" --target caffe caffe.bin convert_imageset compute_image_mean pycaffe \
  > "$build_root/make.log" 2>&1 || { tail -40 "$build_root/make.log" >&2; log "build failed"; exit 1; }
echo "$recipe" > "$builddir/.recipe"
if [ "$tests" = 1 ]; then build_tests; fi

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
if [ "$gpu" = 1 ]; then
  # The CUDA libraries Caffe links (as resolved at build time) go beside libcaffe.so.
  for lib in "$stage"/lib/libcaffe.so.*; do [ -L "$lib" ] || libcaffe="$lib"; done
  ldd "$libcaffe" | awk '/=> \// && $1 ~ /^lib(cudart|cublas|cublasLt|curand)\.so/ {print $3}' | while read -r lib; do
    cp -L "$lib" "$stage/lib/"; log "CUDA runtime library copied: $(basename "$lib")"
  done
  for lib in "$stage"/lib/*.so*; do [ -L "$lib" ] || patchelf --set-rpath '$ORIGIN' "$lib"; done
fi
# The tools and _caffe.so find libcaffe through $ORIGIN-relative paths, not the build folder.
for exe in "$stage"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$exe"; done
patchelf --set-rpath '$ORIGIN/../../lib' "$stage/python/caffe/_caffe.so"
if [ "$tests" = 1 ]; then stage_tests "$stage/test"; fi
echo "$recipe" > "$stage/.recipe"
rm -rf "$prefix"
mv "$stage" "$prefix"
log "installed into $prefix: bin/{caffe,convert_imageset,compute_image_mean}, lib/libcaffe.so, python/caffe$([ "$tests" = 1 ] && echo ', test (test kit)')"
