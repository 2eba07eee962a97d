#!/usr/bin/env bash
# Entry point of the images: the arguments are make's (`docker run IMAGE test`), with or without a
# leading `make` (`docker run IMAGE make test`); none prints `make help`; `bash`/`sh` open a shell.
#
# Before running, it checks that the folders the pipeline writes are writable: a host folder that
# did not exist is created by Docker as root, and the image runs as uid 1000, which then fails
# deep inside with PermissionError. It says what to do instead.
# (JPI_PROJECT and JPI_DATA, default /opt/project and /data, let the tests run it outside the image.)
set -euo pipefail
project="${JPI_PROJECT:-/opt/project}"
cd "$project"

case "${1:-}" in
  "") exec make help ;;
  make) shift ;;
  bash|sh) exec "$@" ;;
esac

# Targets that write neither runs/ nor /data (data/ is a link to /data).
case "${1:-}" in
  help|test|setup|doctor|usecases|lint-docker) readonly_ok=1 ;;
  *) readonly_ok=0 ;;
esac
for dir in "$project/runs" "${JPI_DATA:-/data}"; do
  [ -d "$dir" ] && [ ! -w "$dir" ] || continue
  owner="$(stat -c %u "$dir")"
  cat >&2 <<EOF
entrypoint: $dir is owned by uid $owner and not writable by uid $(id -u), which this container runs as.
  Docker creates a missing host folder as root. Create it yourself before \`docker run\`
  (mkdir -p runs data), and, if your uid is not $(id -u), add --user "\$(id -u):0"
  (the project in the image is writable by group 0), or: sudo chown -R $(id -u) <host folder>.
EOF
  [ "$readonly_ok" = 1 ] || exit 77   # EX_NOPERM
done
exec make "$@"
