#!/usr/bin/env bash
# The container targets of the Makefile: make docker-base, docker-build, docker-test, docker-demo,
# docker-usecase6 call `docker/images.sh base|build|test|demo|usecase6`.
#
# Each one uses the running Docker daemon, or (as root) starts a loopback-only one
# (docker/daemon.sh) and stops it at the end; a daemon it did not start is never stopped.
# Builds use the base image debian:12 when present, else pull it, else the project's own local base
# jpi-dl-base:bookworm (docker/make_base.sh: debootstrap from this machine's Debian mirror), so they
# work air-gapped. This machine's package-index settings (docker/site.env, written by make_base.sh:
# pip index, apt proxy...) go to the build as build arguments, never into an image.
#
# Variables (the Makefile passes them):
#   CUDA=1             the CUDA image (CAFFE_BUILD_FLAGS=--gpu), tag IMAGE:cuda; else IMAGE:cpu
#   IMAGE              image name (default jpi-dl-caffe)
#   DOCKER_NETWORK     --network for every build and run (default host: machines without a bridge);
#                      empty for Docker's default network
#   SHARED             folder mounted at /opt/shared for the tests (default ../shared)
#   WHEELHOUSE         a local folder of wheels (default /opt/wheels, pip's find-links on the
#                      developers' machines): the files of the exact pins of requirements*.txt
#                      found there are staged into docker/wheels/ for the build (the CPU torch
#                      of the U-Net; without it pip downloads PyPI's multi-GB CUDA build)
#   CUDA_TOOLKIT, CUDA_ARCH_BIN   passed to the CUDA build (see docker/build_caffe.sh)
#   DATA, ITER, VARIANT, GPU, FORCE, PYTEST_ARGS   passed to make inside
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-}"
image="${IMAGE:-jpi-dl-caffe}"
cuda=0; case "${CUDA:-0}" in 1|yes|true) cuda=1 ;; esac
tag="$image:$([ "$cuda" = 1 ] && echo cuda || echo cpu)"
net=(); [ -z "${DOCKER_NETWORK-host}" ] || net=(--network "${DOCKER_NETWORK-host}")
shared="${SHARED:-$(cd .. && pwd)/shared}"
log() { printf '[docker] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- daemon and base image
ensure_daemon() {
  docker info >/dev/null 2>&1 && return 0
  bash docker/daemon.sh start
  trap 'bash docker/daemon.sh stop' EXIT
}

LOCAL_BASE=jpi-dl-base:bookworm
base=debian:12
ensure_base() {
  docker image inspect debian:12 >/dev/null 2>&1 && return 0
  if docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then base="$LOCAL_BASE"; return 0; fi
  log "no debian:12 image here: trying the registry"
  if timeout 120 docker pull debian:12 >/dev/null 2>&1; then return 0; fi
  log "the registry cannot be reached: making $LOCAL_BASE locally (docker/make_base.sh)"
  bash docker/make_base.sh --tag "$LOCAL_BASE"
  base="$LOCAL_BASE"
}

# ---------------------------------------------------------------- build
# Wheels of the exact pins (name==version) of requirements*.txt found in WHEELHOUSE, hard-linked
# (or copied) into docker/wheels/, which the build stage copies to /opt/wheels for pip.
stage_wheels() {
  local src="${WHEELHOUSE:-/opt/wheels}" dst=docker/wheels n=0 pin name ver f
  find "$dst" -name '*.whl' -delete
  [ -d "$src" ] || return 0
  while read -r pin; do
    name="${pin%%==*}"; ver="${pin#*==}"
    for f in "$src/${name//-/_}-$ver"[-+]*.whl; do   # torch-2.13.0+cpu-...: a local version label
      [ -f "$f" ] || continue
      cp -l "$f" "$dst/" 2>/dev/null || cp "$f" "$dst/"
      n=$((n + 1))
    done
  done < <(grep -hoE '^[A-Za-z0-9_.-]+==[^ ;#]+' requirements*.txt)
  [ "$n" = 0 ] || log "staged $n local wheel(s) from $src into $dst (pinned in requirements*.txt)"
}

build() {
  ensure_base
  stage_wheels
  local args=(--build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' pipeline/__init__.py)"
              --build-arg "VCS_REF=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
              --build-arg "CAFFE_RECIPE=$(cat docker/build_caffe.sh docker/patches/*.patch | sha256sum | cut -c1-16)")
  local setting
  if [ -f docker/site.env ]; then   # KEY=VALUE lines of docker/site_settings.sh
    while IFS= read -r setting; do [ -z "$setting" ] || args+=(--build-arg "$setting"); done < docker/site.env
  fi
  if [ "$cuda" = 1 ]; then
    args+=(--build-arg CAFFE_BUILD_FLAGS=--gpu --build-arg "CUDA_TOOLKIT=${CUDA_TOOLKIT:-wheels}"
           --build-arg "CUDA_ARCH_BIN=${CUDA_ARCH_BIN:-}")
  fi
  log "building $tag (docker build ${net[*]} -f docker/Dockerfile ...; the first build compiles Caffe)"
  local t0=$SECONDS
  local buildlog="/tmp/jpi-dl-docker-build-${tag//[:\/]/-}.log"     # one per image: builds may overlap
  docker build "${net[@]}" -f docker/Dockerfile "${args[@]}" -t "$tag" . > "$buildlog" 2>&1 || {
    tail -30 "$buildlog" >&2; log "docker build failed (log: $buildlog)"; exit 1; }
  log "built $tag in $((SECONDS - t0)) s; size $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

# ---------------------------------------------------------------- runs
# `make test` inside, as the image's unprivileged user, ../shared mounted where the tests expect it
# (/opt/project/../shared); prints the pytest summary. Under CI a skipped test fails the run.
run_tests() {
  local mounts=() out="/tmp/jpi-dl-docker-test-${tag//[:\/]/-}.log"
  if [ -d "$shared" ]; then
    mounts=(-v "$shared:/opt/shared:ro")
  elif [ "${CI:-}" = true ]; then
    log "$shared is missing: the full suite needs it (CI fails rather than skipping)"; exit 1
  else
    log "$shared is missing: the tests that need it will be skipped"
  fi
  log "docker run $tag make test (uid 1000${mounts:+, $shared at /opt/shared})"
  local t0=$SECONDS rc=0
  docker run --rm "${net[@]}" -e CI="${CI:-}" "${mounts[@]}" "$tag" \
    test PYTEST_ARGS="${PYTEST_ARGS:-}" 2>&1 | tee "$out" || rc=$?     # make test passes -rs itself
  local summary
  summary="$(grep -E '^=+ .*(passed|failed|error).* =+$|^[0-9]+ (passed|failed)' "$out" | tail -1 || true)"
  log "make test in $tag: ${summary:-no pytest summary} (exit $rc, $((SECONDS - t0)) s)"
  [ "$rc" = 0 ] || exit "$rc"
  if [ "${CI:-}" = true ] && grep -q ' skipped' <<< "$summary"; then
    log "CI: tests were skipped inside the container (see SKIPPED lines above)"; exit 1
  fi
}

# The caller's runs/ mounted, the container as the caller's uid with group 0 (the project in the
# image is group-0 writable), so that what it writes belongs to the caller.
run_make() {
  mkdir -p runs
  local gpus=(); case "${GPU:-0}" in 1|yes|true) gpus=(--gpus all) ;; esac
  docker run --rm "${net[@]}" "${gpus[@]}" --user "$(id -u):0" -v "$PWD/runs:/opt/project/runs" \
    "${extra_mounts[@]}" "$tag" "$@"
}

extra_mounts=()
case "$cmd" in
  base) ensure_daemon; bash docker/make_base.sh ;;
  build) ensure_daemon; build ;;
  test) ensure_daemon; build; run_tests ;;
  demo) ensure_daemon; build; run_make demo ;;
  usecase6)
    [ -n "${DATA:-}" ] && [ -e "$DATA" ] || {
      log "usage: make docker-usecase6 DATA=<IDC zip or folder on this machine> [ITER=] [VARIANT=] [GPU=1] [FORCE=1]"; exit 2; }
    data="$(realpath "$DATA")"
    if [ -f "$data" ]; then extra_mounts=(-v "$(dirname "$data"):/input:ro"); inside="/input/$(basename "$data")"
    else extra_mounts=(-v "$data:/input:ro"); inside=/input; fi
    ensure_daemon; build
    opts=(); for v in ITER VARIANT GPU FORCE; do [ -z "${!v:-}" ] || opts+=("$v=${!v}"); done
    run_make usecase6 DATA="$inside" "${opts[@]}" ;;
  *) echo "usage: docker/images.sh base|build|test|demo|usecase6" >&2; exit 2 ;;
esac
