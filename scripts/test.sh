#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the test suite. `--slow` adds the long end-to-end tests;
# other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${BISEP_VENV:-.venv}"
marker=()
if [ "${1:-}" = "--slow" ]; then
  shift
  marker=(-m "slow or not slow")
fi
exec "$venv/bin/python" -m pytest -q "${marker[@]}" "$@"
