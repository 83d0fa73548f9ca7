#!/usr/bin/env bash
# Make PostgreSQL and Redis ready on this machine for the PostgreSQL + Redis test pass
# (and `make chaos`, `make bench`): install what is missing with apt, start what is not
# answering (no systemd here: pg_ctlcluster and a daemonised redis-server), create the
# `palabre` role and database, and wait until both answer. Idempotent; run as root.
# Exits non-zero with a clear message when a service cannot be made ready.
set -euo pipefail

cd "$(dirname "$0")/.."

DB_USER=palabre
DB_PASSWORD=palabre
DB_NAME=palabre
PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
DATABASE_URL="postgres://${DB_USER}:${DB_PASSWORD}@${PG_HOST}:${PG_PORT}/${DB_NAME}"
REDIS_URL="redis://${REDIS_HOST}:${REDIS_PORT}/0"
WAIT_S=${PALABRE_SERVICES_WAIT_S:-30}
REDIS_LOG=${TMPDIR:-/tmp}/palabre-redis.log

fail() {
    echo "services.sh: error: $*" >&2
    exit 1
}

# Chromium is for the browser tests, gettext for the catalogues: `make test` needs both.
scripts/ensure-packages.sh \
    /usr/lib/postgresql/*/bin/postgres:postgresql \
    pg_ctlcluster:postgresql \
    psql:postgresql-client \
    redis-server:redis-server \
    redis-cli:redis-tools \
    msgfmt:gettext \
    chromium:chromium \
    || fail "could not install the missing Debian packages (see above)"

redis_up() {
    [[ $(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

pg_up() {
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
}

# Connects as the palabre role, which needs CREATEDB for the test databases.
db_up() {
    [[ $(PGCONNECT_TIMEOUT=5 psql "$DATABASE_URL" -qtAX \
        -c 'SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user' 2>/dev/null) == t ]]
}

# Runs a command as the postgres system user (peer authentication to the superuser).
as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        (cd / && sudo -n -u postgres -- "$@")
    else
        fail "run as root to start PostgreSQL and create the '$DB_USER' role"
    fi
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n -- "$@"
    else
        fail "run as root to start PostgreSQL"
    fi
}

wait_for() {
    local check=$1 deadline=$((SECONDS + WAIT_S))
    until "$check"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

# --- Redis ---------------------------------------------------------------------------
if ! redis_up; then
    echo "==> starting Redis on ${REDIS_HOST}:${REDIS_PORT}"
    # No persistence: the channel layer and the cache are disposable. --dir keeps any
    # file Redis might write out of the checkout.
    redis-server --daemonize yes --port "$REDIS_PORT" --bind "$REDIS_HOST" \
        --save '' --appendonly no --dir "${TMPDIR:-/tmp}" --logfile "$REDIS_LOG" \
        || fail "redis-server did not start (log: $REDIS_LOG)"
fi
if ! wait_for redis_up; then
    tail -n 20 "$REDIS_LOG" >&2 2>/dev/null || true
    fail "Redis does not answer on ${REDIS_HOST}:${REDIS_PORT} after ${WAIT_S}s (log: $REDIS_LOG)"
fi

# --- PostgreSQL ----------------------------------------------------------------------
PG_VERSION=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
[[ -n $PG_VERSION ]] || fail "no PostgreSQL server under /usr/lib/postgresql"

if ! pg_up; then
    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" '$1 == v && $2 == "main" {found=1} END {exit !found}'; then
        echo "==> creating the PostgreSQL $PG_VERSION cluster 'main'"
        as_root pg_createcluster --port "$PG_PORT" "$PG_VERSION" main
    fi
    cluster_port=$(pg_lsclusters -h | awk -v v="$PG_VERSION" '$1 == v && $2 == "main" {print $3}')
    [[ $cluster_port == "$PG_PORT" ]] \
        || fail "the PostgreSQL $PG_VERSION cluster 'main' listens on port $cluster_port, not $PG_PORT"
    echo "==> starting PostgreSQL $PG_VERSION (cluster main) on ${PG_HOST}:${PG_PORT}"
    as_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    as_root pg_ctlcluster "$PG_VERSION" main start \
        || fail "pg_ctlcluster $PG_VERSION main start failed (log: /var/log/postgresql/postgresql-$PG_VERSION-main.log)"
fi
if ! wait_for pg_up; then
    tail -n 20 "/var/log/postgresql/postgresql-$PG_VERSION-main.log" >&2 2>/dev/null || true
    fail "PostgreSQL does not answer on ${PG_HOST}:${PG_PORT} after ${WAIT_S}s"
fi

if ! db_up; then
    echo "==> creating the PostgreSQL role '$DB_USER' and database '$DB_NAME'"
    as_postgres psql -v ON_ERROR_STOP=1 -qX -d postgres <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${DB_USER}') THEN
        CREATE ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}';
    ELSE
        ALTER ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}';
    END IF;
END
\$\$;
SQL
    if ! as_postgres psql -qtAX -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'" | grep -q 1; then
        as_postgres createdb -O "$DB_USER" "$DB_NAME"
    fi
fi
if ! wait_for db_up; then
    fail "cannot connect to $DATABASE_URL (role, password or pg_hba.conf?)"
fi

echo "PostgreSQL and Redis are ready:"
echo "DATABASE_URL=$DATABASE_URL"
echo "REDIS_URL=$REDIS_URL"
