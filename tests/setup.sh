#!/usr/bin/env bash
# Install everything the tests need: the .venv with runtime and test packages,
# and Chromium for the end-to-end browser tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The packages' modules are byte-compiled after, on every core: pip compiles their 16,700 files on one, 33 s of
# its 61 s here (45 s in all this way). Like pip, a file that does not compile is left to compile when imported.
.venv/bin/python -m pip install --quiet --no-compile -r requirements.txt -r tests/requirements.txt
.venv/bin/python -m compileall -q -j 0 "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
  >/dev/null || true
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
