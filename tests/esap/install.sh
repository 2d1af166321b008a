#!/usr/bin/env bash
# Build (or keep) the venv the real ESAP gateway runs in for tests/e2e/test_esap_gateway.py: pyenv's Python 3.10
# (the gateway's Dockerfile runs python:3.10-slim) with the gateway's own pinned requirements
# (tests/vendor/esap-api-gateway/esap/requirements/prod.txt, which includes base.txt) minus eossr 0.6.1, which does
# not build here and is
# stubbed (tests/vendor/esap-api-gateway/stubs, on PYTHONPATH when the gateway runs). nbpack-client and
# nbpack-esap are installed by the test fixture itself, which checks they move none of these pins.
# uv when present (as tests/rucio/install.sh), pip otherwise. A lock keeps two callers from building at once.
# Env: ESAP_VENV (default <repo>/.cache/esap-gateway-venv-9c6f7fc), PYTHON310 (default: pyenv's newest 3.10).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="$REPO/.cache"
VENV=${ESAP_VENV:-$CACHE/esap-gateway-venv-9c6f7fc}
REQS="$REPO/tests/vendor/esap-api-gateway/esap/requirements"
PY=${PYTHON310:-}
if [ -z "$PY" ]; then
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3; do [ -x "$candidate" ] && PY=$candidate; done
fi
[ -n "$PY" ] || { echo "install.sh: no Python 3.10 (pyenv install 3.10, or set PYTHON310)" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/esap-gateway-venv.lock"
flock 9
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import django, rest_framework, pyvo, nbformat; assert django.__version__ == '4.0.2'" 2>/dev/null; then
  exit 0
fi
rm -rf "$VENV"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -v -i '^eossr' "$REQS/base.txt" > "$tmp/base.txt"
cp "$REQS/prod.txt" "$tmp/prod.txt"   # "-r base.txt": the filtered copy beside it
reqs="$tmp/prod.txt"
if command -v uv >/dev/null 2>&1; then
  uv venv -q -p "$PY" "$VENV" && uv pip install -q -p "$VENV/bin/python" -r "$reqs" && exit 0
  rm -rf "$VENV"
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$reqs"
