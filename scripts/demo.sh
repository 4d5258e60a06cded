#!/usr/bin/env bash
# Set up the gateway and run the live demo on embedded defaults. Extra arguments go to `segel demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/segel demo "$@"
