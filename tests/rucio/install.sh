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
# uv when present (measured: ~36 s for the server venv where pip took ~500 s, load ~10 on 2 cores), pip otherwise.
make_venv() {   # venv constraints packages...
  local venv=$1 constraints=$2; shift 2
  rm -rf "$venv"
  if command -v uv >/dev/null 2>&1; then
    uv venv -q -p "$PY" "$venv" && uv pip install -q -p "$venv/bin/python" "$@" -c "$constraints" && return 0
    rm -rf "$venv"
  fi
  "$PY" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" -c "$constraints"
}
has() { "$1/bin/python" -c "import importlib.metadata as m,sys;sys.exit(m.version('$2')!='$RUCIO_VERSION')" 2>/dev/null; }
if ! has "$VENV" rucio || [ ! -x "$VENV/bin/gunicorn" ]; then
  make_venv "$VENV" "$HERE/constraints-server.txt" "rucio==$RUCIO_VERSION" "gunicorn==$GUNICORN_VERSION"
fi
if [ "${SKIP_CLIENT_VENV:-0}" != 1 ] && ! has "$CVENV" rucio-clients; then
  make_venv "$CVENV" "$HERE/constraints-client.txt" "rucio-clients==$RUCIO_VERSION"
fi
