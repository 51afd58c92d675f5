#!/usr/bin/env bash
# Installs nginx from apt if it is missing (idempotent): the cluster and proxy tests run it as
# a plain child process with a configuration of their own, never as a system service.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
echo "nginx is missing; installing it from apt" >&2
# While another apt run holds the lock, wait for it rather than fail.
while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1; do sleep 5; done
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null 2>&1 || {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
}
