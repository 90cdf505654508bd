#!/usr/bin/env bash
# Set up .venv and run the whole test suite, real packaged models included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser test drives Debian's headless Chromium; install it when it is missing.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
. .venv/bin/activate
# The hub is never needed: models come from installed packages.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check rag tests scripts
mypy
python -m pytest "$@"
