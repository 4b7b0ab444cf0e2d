#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs bisep's main job on the built-in default: `bisep demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${BISEP_VENV:-.venv}"
exec "$venv/bin/bisep" demo "$@"
