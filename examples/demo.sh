#!/usr/bin/env bash
# `make demo`: the quick-start jobs end to end on the embedded emulator, no cloud account.
# validate → plan → apply → plan again (no changes, exit 0) → drift (in sync, exit 0).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
case "$python" in /*) ;; */*) python="$PWD/$python" ;; esac
work="$(mktemp -d "${TMPDIR:-/tmp}/planner-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R "$here/examples/quickstart" "$work/quickstart"
cd "$work"

run() {
  printf '\n\033[1m$ planner %s\033[0m\n' "$*"
  "$python" -m planner "$@"
}

run validate quickstart/
run plan quickstart/ --emulator
run apply quickstart/ --emulator --auto-approve
run plan quickstart/ --emulator --detailed-exitcode
run drift quickstart/ --emulator
printf '\nDemo finished: applied once, planned again with no changes, and no drift.\n'
