#!/usr/bin/env bash
# Start a REAL Rucio server (PyPI `rucio`, Flask app under gunicorn, SQLite) on loopback,
# plus serve_storage.py (stdlib static file server, http or https) acting as the storage
# behind RSEs LOCAL-DISK and FAR-DISK, then register (through the REST API, rucio_populate.py) scope `escape`,
# files with real adler32/md5/bytes, a dataset and a container. Re-runnable: WORKDIR's DB is recreated.
#
# Usage:  start_rucio.sh [WORKDIR]          (WORKDIR default: a fresh mktemp -d)
# Env (all optional):
#   RUCIO_VENV         server venv; created by install.sh if it lacks rucio 41.5.1
#                      (default: <repo>/.cache/rucio-venv-41.5.1)
#   RUCIO_CLIENT_VENV  venv for the separate `rucio-clients` package (default:
#                      <repo>/.cache/rucio-clients-venv-41.5.1); SKIP_CLIENT_VENV=1 skips it
#   RUCIO_PORT, HTTP_PORT   ports on 127.0.0.1 (default: free ports picked at run time)
#   GUNICORN_THREADS   default 1: SQLite + concurrent writers -> "database is locked" (see README)
#   RUCIO_SCHEME       http (default) or https: the Rucio server itself behind TLS (gunicorn, the same
#                      self-signed cert as the storage; trust WORKDIR/storage.crt, e.g. SSL_CERT_FILE)
#   STORAGE_SCHEME     http (default) or https (self-signed cert for 127.0.0.1, made with openssl;
#                      needed if you want `rucio download` to work, see README)
# Result: WORKDIR/env.sh (source it) with RUCIO_URL, pids, client config; stop with
#         stop_rucio.sh WORKDIR.  Everything binds 127.0.0.1 only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T_START=$(date +%s.%N)
PY=${PYTHON:-python3}
RUCIO_VERSION=41.5.1

WORKDIR=${1:-$(mktemp -d /tmp/rucio-run.XXXXXX)}
mkdir -p "$WORKDIR"/{log,storage}
WORKDIR="$(cd "$WORKDIR" && pwd)"
CACHE="$(cd "$HERE/../.." && pwd)/.cache"
VENV=${RUCIO_VENV:-$CACHE/rucio-venv-$RUCIO_VERSION}
CVENV=${RUCIO_CLIENT_VENV:-$CACHE/rucio-clients-venv-$RUCIO_VERSION}

free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
elapsed() { "$PY" -c "import sys;print(round($(date +%s.%N)-$1,2))"; }

# ---------------------------------------------------------------- 1. install
T0=$(date +%s.%N)
RUCIO_VENV="$VENV" RUCIO_CLIENT_VENV="$CVENV" "$HERE/install.sh"
T_INSTALL=$(elapsed "$T0")

SITE=$("$VENV/bin/python" -c 'import rucio,os;print(os.path.dirname(os.path.dirname(rucio.__file__)))')
RUCIO_PORT=${RUCIO_PORT:-$(free_port)}
HTTP_PORT=${HTTP_PORT:-$(free_port)}
while [ "$HTTP_PORT" = "$RUCIO_PORT" ]; do HTTP_PORT=$(free_port); done
for p in "$RUCIO_PORT" "$HTTP_PORT"; do   # a busy port would make /ping answer from someone else
  "$PY" -c "import socket;s=socket.socket();s.bind(('127.0.0.1',$p))" 2>/dev/null \
    || { echo "port $p on 127.0.0.1 is already in use" >&2; exit 1; }
done
RUCIO_SCHEME=${RUCIO_SCHEME:-http}
RUCIO_URL="$RUCIO_SCHEME://127.0.0.1:$RUCIO_PORT"

# ---------------------------------------------------------------- 2. config
cat > "$WORKDIR/rucio.cfg" <<EOF
[common]
logdir = $WORKDIR/log
loglevel = WARNING
mailtemplatedir = $VENV/rucio/etc/mail_templates

[database]
default = sqlite:///$WORKDIR/rucio.db
echo = 0
pool_reset_on_return = rollback

[alembic]
cfg = $WORKDIR/alembic.ini

[bootstrap]
# plain-text password: create_root_account() salts+hashes it itself
userpass_identity = ddmlab
userpass_pwd = secret
userpass_email = rucio-dev@example.org

[policy]
# built-in generic policy (no policy package needed)
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash
support = https://github.com/rucio/rucio/issues/
support_rucio = https://github.com/rucio/rucio/issues/

[cache]
# no memcached: an unreachable url makes rucio fall back to dogpile's null cache
url = 127.0.0.1:1

[api]
endpoints = accounts, auth, config, dids, identities, meta_conventions, ping, redirect, replicas, rses, rules, scopes
EOF

# alembic.ini: build_database() stamps the schema; needs script_location + logging sections
cat > "$WORKDIR/alembic.ini" <<EOF
[alembic]
script_location = $SITE/rucio/db/sqla/migrate_repo
sqlalchemy.url = sqlite:///$WORKDIR/rucio.db

[loggers]
keys = root
[handlers]
keys = console
[formatters]
keys = generic
[logger_root]
level = WARN
handlers = console
qualname =
[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic
[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
EOF

# client config: NO [database] section, otherwise rucio thinks it runs server-side
cat > "$WORKDIR/client.cfg" <<EOF
[client]
rucio_host = $RUCIO_URL
auth_host = $RUCIO_URL
auth_type = userpass
username = ddmlab
password = secret
account = root
request_retries = 1
ca_cert = $WORKDIR/storage.crt

[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash
EOF

# ---------------------------------------------------------------- 3. bootstrap DB
T0=$(date +%s.%N)
"$HERE/stop_rucio.sh" "$WORKDIR"      # servers of an earlier run in this WORKDIR, if any
rm -f "$WORKDIR/rucio.db"
# The freshly bootstrapped DB holds nothing run-specific (schema, VO, root account), so it is built once per
# Rucio version and copied afterwards: building takes ~1 s idle but 20-50 s on a loaded 2-core machine.
DB_TEMPLATE="$CACHE/rucio-bootstrapped-$RUCIO_VERSION.db"
if [ -f "$DB_TEMPLATE" ]; then
  cp "$DB_TEMPLATE" "$WORKDIR/rucio.db"
else
  RUCIO_CONFIG="$WORKDIR/rucio.cfg" "$VENV/bin/python" - <<'EOF' > "$WORKDIR/log/bootstrap.log" 2>&1
from rucio.db.sqla.util import build_database, create_base_vo, create_root_account
build_database()        # create tables + alembic stamp head
create_base_vo()        # VO 'def'
create_root_account()   # account root, identity ddmlab/secret (userpass)
EOF
  mkdir -p "$CACHE"
  cp "$WORKDIR/rucio.db" "$DB_TEMPLATE.$$" && mv "$DB_TEMPLATE.$$" "$DB_TEMPLATE"
fi
T_BOOT=$(elapsed "$T0")

# ---------------------------------------------------------------- 4. servers
STORAGE_SCHEME=${STORAGE_SCHEME:-http}
PEM=""
TLS_ARGS=()
if [ "$STORAGE_SCHEME" = https ] || [ "$RUCIO_SCHEME" = https ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=127.0.0.1 \
      -addext subjectAltName=IP:127.0.0.1 -keyout "$WORKDIR/storage.key" -out "$WORKDIR/storage.crt" 2>/dev/null
  cat "$WORKDIR/storage.crt" "$WORKDIR/storage.key" > "$WORKDIR/storage.pem"   # cert+key
  [ "$STORAGE_SCHEME" = https ] && PEM="$WORKDIR/storage.pem"
  [ "$RUCIO_SCHEME" = https ] && TLS_ARGS=(--certfile "$WORKDIR/storage.crt" --keyfile "$WORKDIR/storage.key")
fi
"$VENV/bin/python" "$HERE/serve_storage.py" "$HTTP_PORT" "$WORKDIR/storage" $PEM > "$WORKDIR/log/http.log" 2>&1 &
echo $! > "$WORKDIR/http.pid"

T0=$(date +%s.%N)
RUCIO_CONFIG="$WORKDIR/rucio.cfg" "$VENV/bin/gunicorn" \
    --bind "127.0.0.1:$RUCIO_PORT" --workers 1 --threads "${GUNICORN_THREADS:-1}" --timeout 60 --graceful-timeout 2 \
    --no-control-socket "${TLS_ARGS[@]}" \
    --access-logfile "$WORKDIR/log/access.log" --error-logfile "$WORKDIR/log/gunicorn.log" \
    rucio.web.rest.flaskapi.v1.main:application > "$WORKDIR/log/gunicorn.out" 2>&1 &
echo $! > "$WORKDIR/gunicorn.pid"
ok=0
for _ in $(seq 1 240); do    # bounded: at most ~60 s
  if SSL_CERT_FILE="$WORKDIR/storage.crt" "$PY" -c "import urllib.request;urllib.request.urlopen('$RUCIO_URL/ping',timeout=1)" 2>/dev/null; then ok=1; break; fi
  if ! alive "$(cat "$WORKDIR/gunicorn.pid")"; then break; fi   # died early (zombie counts as dead)
  sleep 0.25
done
T_FIRST200=$(elapsed "$T0")
if [ $ok != 1 ]; then
  echo "rucio server did not answer /ping; see $WORKDIR/log" >&2; tail -30 "$WORKDIR/log/gunicorn.log" >&2
  "$HERE/stop_rucio.sh" "$WORKDIR"; exit 1
fi
for _ in $(seq 1 40); do   # http.server up?
  "$PY" -c "import socket;socket.create_connection(('127.0.0.1',$HTTP_PORT),1)" 2>/dev/null && break; sleep 0.25
done

# ---------------------------------------------------------------- 5. populate via REST
T0=$(date +%s.%N)
RUCIO_CONFIG="$WORKDIR/client.cfg" HTTP_PORT=$HTTP_PORT STORAGE_DIR="$WORKDIR/storage" \
    STORAGE_SCHEME=$STORAGE_SCHEME STORAGE_CA="$WORKDIR/storage.crt" \
    "$VENV/bin/python" "$HERE/rucio_populate.py" > "$WORKDIR/registered.json"
T_POP=$(elapsed "$T0")

cat > "$WORKDIR/env.sh" <<EOF
export RUCIO_URL=$RUCIO_URL
export RUCIO_PORT=$RUCIO_PORT
export RUCIO_STORAGE_URL=$STORAGE_SCHEME://127.0.0.1:$HTTP_PORT
export RUCIO_STORAGE_CA=$( [ -n "$PEM" ] && echo "$WORKDIR/storage.crt" )
export RUCIO_WORKDIR=$WORKDIR
export RUCIO_CLIENT_CONFIG=$WORKDIR/client.cfg
export RUCIO_VENV=$VENV
export RUCIO_CLIENT_VENV=$CVENV
export RUCIO_ACCOUNT=root RUCIO_USERNAME=ddmlab RUCIO_PASSWORD=secret
export RUCIO_SERVER_PID=$(cat "$WORKDIR/gunicorn.pid") RUCIO_HTTP_PID=$(cat "$WORKDIR/http.pid")
EOF
echo "{\"rucio_url\": \"$RUCIO_URL\", \"workdir\": \"$WORKDIR\", \"install_s\": $T_INSTALL, \"db_bootstrap_s\": $T_BOOT, \"server_start_to_first_200_s\": $T_FIRST200, \"populate_s\": $T_POP, \"total_s\": $(elapsed "$T_START")}" | tee "$WORKDIR/timings.json"
