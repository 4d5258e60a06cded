#!/usr/bin/env bash
# Set up the gateway and run the live demo on embedded defaults. Extra arguments go to `segel demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
.venv/bin/segel demo "$@" || status=$?
echo "segel is $(pwd)/.venv/bin/segel: run it by that path, or first: source .venv/bin/activate" >&2
exit "$status"
