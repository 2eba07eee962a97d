#!/usr/bin/env bash
# Install the Debian packages of docker/slurm-packages.txt (SLURM and MUNGE) when missing: what the
# tests' single-node cluster runs. As root, or with sudo. In the runtime image (JPI_RUNTIME_IMAGE=1)
# the packages were fixed when it was built and nothing is installed. Nothing is configured or
# started: the tests start their own daemons with their own configuration (tests/slurm_cluster.py).
# On a host running systemd, Debian's packages enable munge.service (with /etc/munge/munge.key) and
# the slurmd/slurmctld units, which stay inactive without /etc/slurm/slurm.conf.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[setup_slurm] %s\n' "$*" >&2; }

mapfile -t pkgs < <(grep -v '^\s*#' "$here/slurm-packages.txt" | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" = 0 ]; then
  log "SLURM and MUNGE packages: all present"
  exit 0
fi
if [ "${JPI_RUNTIME_IMAGE:-0}" = 1 ]; then
  log "runtime image without ${missing[*]}: rebuild the image (docker/Dockerfile installs docker/slurm-packages.txt)"
  exit 1
fi
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { log "missing Debian packages: ${missing[*]} (not root and no sudo: install them as root)"; exit 1; }
  sudo_cmd=(sudo)
fi
log "installing Debian packages: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "${missing[@]}"
