#!/usr/bin/env bash
# Install everything the tests need: the .venv with runtime and test packages,
# and Chromium for the end-to-end browser tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# uv installs the pinned packages from requirements.txt as pip would, and byte-compiles them on every core:
# 22 s here against pip's 45 s (61 s when pip compiles them on one core).
.venv/bin/python -m pip install --quiet uv==0.13.10
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -r requirements.txt -r tests/requirements.txt
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
