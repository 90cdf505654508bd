#!/usr/bin/env bash
# Set up .venv and run the whole test suite, real packaged models included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# The hub is never needed: models come from installed packages.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check rag tests scripts
mypy
python -m pytest "$@"
