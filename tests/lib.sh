# Shared by tests/run.sh and tests/bench.sh: make sure PostgreSQL runs and the
# pinned tansu broker is built and started; clean up afterwards. Source it.

TANSU_VERSION=0.6.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${THROUGHCARE_CACHE:-$HOME/.cache/throughcare}
export THROUGHCARE_TEST_POSTGRES_URL=${THROUGHCARE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

postgres_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
    if command -v pg_isready >/dev/null && postgres_ready; then return; fi
    local installed_here=0
    if ! command -v pg_ctlcluster >/dev/null; then
        log "PostgreSQL is not installed: installing Debian's postgresql package"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        installed_here=1
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do postgres_ready && break; sleep 0.5; done
    postgres_ready || { log "PostgreSQL did not become ready"; exit 1; }
    if [ "$installed_here" = 1 ]; then
        # A cluster this script installed: let local test connections in without
        # a password, as on the CI machines (never done to an existing cluster).
        local hba=/etc/postgresql/$version/main/pg_hba.conf
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
}

ensure_tansu() {
    tansu="$cache/tansu-$TANSU_VERSION/bin/tansu"
    if [ -x "$tansu" ] && [ "$("$tansu" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ]; then return; fi
    log "building tansu $TANSU_VERSION into $cache (once; about 9 minutes on 2 cores)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql --root "$cache/tansu-$TANSU_VERSION"
}

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    log "no free port found"; exit 1
}

start_broker() {
    broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/throughcare-tansu.XXXXXX")
    broker_port=$(free_port)
    # tansu 0.6.0 resolves sqlite:// paths relative to its working directory.
    # THROUGHCARE_TANSU_STORAGE overrides the storage engine URL.
    (cd "$broker_dir" && exec "$tansu" broker \
        --listener-url "tcp://127.0.0.1:$broker_port" \
        --advertised-listener-url "tcp://127.0.0.1:$broker_port" \
        --storage-engine "${THROUGHCARE_TANSU_STORAGE:-sqlite://tansu.db}" >broker.log 2>&1) &
    broker_pid=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null; then
            log "tansu $TANSU_VERSION listening on 127.0.0.1:$broker_port"
            export THROUGHCARE_TEST_KAFKA_BROKERS="127.0.0.1:$broker_port"
            export THROUGHCARE_TANSU_BIN="$tansu"
            return
        fi
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.1
    done
    log "tansu did not start:"; cat "$broker_dir/broker.log" >&2; exit 1
}

# Drops the test databases no one is connected to (another run may be using the rest).
drop_test_databases() {
    psql "$THROUGHCARE_TEST_POSTGRES_URL" -Atq -c \
        "SELECT datname FROM pg_database WHERE datname LIKE 'tc\_test\_%'" 2>/dev/null |
        while read -r db; do psql "$THROUGHCARE_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
}

cleanup() {
    local status=$?
    if [ -n "${broker_pid:-}" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
    [ -n "${broker_dir:-}" ] && rm -rf "$broker_dir"
    drop_test_databases
    exit "$status"
}

