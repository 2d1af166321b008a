#!/usr/bin/env bash
# Create (or keep) the two venvs the real Rucio test server needs: the server (PyPI rucio + gunicorn) and the
# separate rucio-clients. Versions pinned by the constraints files next to this script; a venv that already has
# the right version is left alone. A lock keeps two callers (setup.sh, test sessions) from building at once.
# Env: RUCIO_VENV, RUCIO_CLIENT_VENV (default: <repo>/.cache/...), SKIP_CLIENT_VENV=1 skips the client venv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$(cd "$HERE/../.." && pwd)/.cache"
PY=${PYTHON:-python3}
RUCIO_VERSION=41.5.1
GUNICORN_VERSION=27.0.1
VENV=${RUCIO_VENV:-$CACHE/rucio-venv-$RUCIO_VERSION}
CVENV=${RUCIO_CLIENT_VENV:-$CACHE/rucio-clients-venv-$RUCIO_VERSION}
mkdir -p "$CACHE"
exec 9>"$CACHE/rucio-venv.lock"
flock 9
has() { "$1/bin/python" -c "import importlib.metadata as m,sys;sys.exit(m.version('$2')!='$RUCIO_VERSION')" 2>/dev/null; }
if ! has "$VENV" rucio || [ ! -x "$VENV/bin/gunicorn" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "rucio==$RUCIO_VERSION" "gunicorn==$GUNICORN_VERSION" \
      -c "$HERE/constraints-server.txt"
fi
if [ "${SKIP_CLIENT_VENV:-0}" != 1 ] && ! has "$CVENV" rucio-clients; then
  rm -rf "$CVENV"
  "$PY" -m venv "$CVENV"
  "$CVENV/bin/pip" install -q --disable-pip-version-check "rucio-clients==$RUCIO_VERSION" \
      -c "$HERE/constraints-client.txt"
fi
