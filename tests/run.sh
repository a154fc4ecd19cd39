#!/usr/bin/env bash
# Runs Throughcare's whole test suite against the real parts:
#   - PostgreSQL on 127.0.0.1:5432 (started if stopped; installed from Debian if absent),
#   - the pinned tansu Kafka-protocol broker (built once into a cache, started
#     here on a free port with fresh storage),
# then the workspace's tests with their addresses exported, and stops what it
# started. Arguments replace `--workspace`, e.g. `tests/run.sh -p throughcare-platform`.
#
# Environment:
#   THROUGHCARE_TEST_POSTGRES_URL  admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
#   THROUGHCARE_CACHE              where tools are cached (default ~/.cache/throughcare)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_postgres
ensure_tansu
trap cleanup EXIT
drop_test_databases
start_broker

cd "$here"
log "building the binaries the end-to-end tests run"
cargo build --workspace --bins
if [ "$#" -eq 0 ]; then set -- --workspace --no-fail-fast; fi
log "running cargo test $*"
cargo test "$@"
