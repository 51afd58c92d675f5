#!/usr/bin/env bash
# Browser test of the timeline page and of the TimelineJS export (timelinejs.mjs, in the real
# @knight-lab/timelinejs): installs what is missing (Chromium from apt, playwright-core and
# TimelineJS from npm, the project's virtualenv), then runs test.mjs against a seeded throwaway
# server.
# Screenshots land in var/artifacts/browser/ (git-ignored). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x "$CHROMIUM" ]; then
  echo "Chromium is missing; installing it from apt"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "Node.js is missing; installing it from apt"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
# playwright-core is a plain package: it never downloads a browser of its own.
npm ci --no-audit --no-fund --loglevel=error
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  make -C "$ROOT" install
fi
CHROMIUM="$CHROMIUM" node test.mjs
