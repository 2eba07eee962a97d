#!/usr/bin/env bash
# Start or stop a loopback-only Docker daemon for the docker-* make targets.
#
#   docker/daemon.sh start   if a daemon answers, do nothing; else (as root) install docker.io when
#                            dockerd is missing, start `dockerd --bridge=none --iptables=false`
#                            (no docker0 bridge, no firewall rules, only the unix socket: containers
#                            use --network host) and record its pid in $DOCKERD_STATE/dockerd.pid
#   docker/daemon.sh stop    stop the daemon that `start` started (the pid it recorded), nothing else
#
# DOCKERD_STATE  folder for the pid file and the log (default /tmp/jpi-dl-dockerd)
set -euo pipefail

state="${DOCKERD_STATE:-/tmp/jpi-dl-dockerd}"
pidfile="$state/dockerd.pid"
logfile="$state/dockerd.log"
log() { printf '[docker-daemon] %s\n' "$*" >&2; }

answers() { docker info >/dev/null 2>&1; }

start() {
  if answers; then
    log "a Docker daemon is already running: using it (it will not be stopped)"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    log "no Docker daemon answers and this is not root: start one (or add yourself to the docker group) and rerun"
    exit 1
  fi
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    log "installing Debian's docker.io (dockerd, containerd, runc, docker CLI)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  mkdir -p "$state"
  log "starting dockerd (no bridge, no iptables; log: $logfile)"
  # setsid: the daemon outlives this script and make, and is stopped by `stop` through its pid
  setsid dockerd --bridge=none --iptables=false --ip6tables=false \
    --host "unix:///var/run/docker.sock" >"$logfile" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 60); do
    if answers; then
      log "dockerd answers (pid $(cat "$pidfile"))"
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
    sleep 1
  done
  log "dockerd did not come up; last lines of $logfile:"
  tail -20 "$logfile" >&2
  stop
  exit 1
}

stop() {
  [ -f "$pidfile" ] || { log "no daemon started by this script: nothing to stop"; return 0; }
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null; then
    log "stopping the dockerd this script started (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: docker/daemon.sh start|stop" >&2; exit 2 ;;
esac
