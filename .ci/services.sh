# shellcheck shell=bash
# Services for the whyrec service tests. Sourced (as root, on Debian) by .ci/run:
#   * installs PostgreSQL and Chromium if they are missing (one apt-get update, only then),
#   * creates and starts the newest installed PostgreSQL cluster if it is down,
#   * creates the role and database the tests use (idempotent),
#   * exports WHYREC_TEST_PG_URL for tests/test_store.py.
# Quick when everything is already there. Being sourced, it never calls `exit` or `set -e`.

_whyrec_pg_psql() {  # psql as the postgres superuser on the cluster's port
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$1" -d postgres "${@:2}"
}

_whyrec_services() {
    local missing=() version port role=whyrec db=whyrec_test password=whyrec
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
    [ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
    [ -d /usr/share/fonts/opentype/noto ] || missing+=(fonts-noto-cjk)  # Chinese text in the page
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "services.sh: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || return 1
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
    fi

    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    [ -n "$version" ] || { echo "services.sh: no PostgreSQL server found" >&2; return 1; }
    if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
        pg_createcluster "$version" main >/dev/null || return 1
    fi
    port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $3 }')
    if ! pg_ctlcluster "$version" main status >/dev/null 2>&1; then
        pg_ctlcluster "$version" main start || return 1
    fi
    local tries=0
    until pg_isready -q -h 127.0.0.1 -p "$port"; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || { echo "services.sh: PostgreSQL $version did not start" >&2; return 1; }
        sleep 0.5
    done

    if [ "$(_whyrec_pg_psql "$port" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" != "1" ]; then
        _whyrec_pg_psql "$port" -c "CREATE ROLE $role LOGIN PASSWORD '$password'" || return 1
    fi
    if [ "$(_whyrec_pg_psql "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
        _whyrec_pg_psql "$port" -c "CREATE DATABASE $db OWNER $role" || return 1
    fi
    export WHYREC_TEST_PG_URL="postgresql+psycopg://$role:$password@127.0.0.1:$port/$db"
    echo "services.sh: PostgreSQL $version on port $port, chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}')" >&2
}

_whyrec_services || echo "services.sh: service setup failed; PostgreSQL/browser tests will not run" >&2
unset -f _whyrec_services _whyrec_pg_psql
