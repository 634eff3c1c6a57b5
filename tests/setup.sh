#!/usr/bin/env bash
# Install everything the tests need: the .venv with runtime and test packages,
# and Chromium for the end-to-end browser tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# uv installs the pinned packages from requirements.txt as pip would, and byte-compiles them on every core:
# 20-23 s for the whole set-up here against 48-54 s with pip at the same hour; the install itself takes 3 s from
# uv's cache, and most of the rest is the compiling.
.venv/bin/python -m pip install --quiet uv==0.13.10
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -r requirements.txt -r tests/requirements.txt
# The project's own code, byte-compiled too (half a second): where Python is told not to write bytecode
# (PYTHONDONTWRITEBYTECODE, as on these machines) every process compiled optlib's modules again on import, 0.2 s of
# a core in each of the run's few hundred workers, helpers and servers. A file changed later is compiled again in
# memory, as before.
.venv/bin/python -m compileall -q -j 0 app.py optlib pages bench tests
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
