#!/usr/bin/env bash
# LibreOffice Calc without a GUI (`soffice`), for tests/consumers/test_spreadsheet.py: installed
# from apt if missing, else nothing. Two `make test` runs at once (CI runs SQLite and PostgreSQL
# side by side) take turns on a lock rather than race apt.
set -euo pipefail
if command -v soffice >/dev/null; then exit 0; fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
exec 9>"${TMPDIR:-/tmp}/diplomatic-timeline-libreoffice.lock"
flock 9
if command -v soffice >/dev/null; then exit 0; fi
echo "LibreOffice (soffice) is missing; installing libreoffice-calc-nogui from apt"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  -o DPkg::Lock::Timeout=600 libreoffice-calc-nogui
command -v soffice >/dev/null
