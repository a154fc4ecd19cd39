#!/usr/bin/env bash
# Runs a benchmark against the real parts (PostgreSQL and the pinned tansu
# broker, started as for the tests) and prints its figures. Benchmarks print;
# they never assert times. Usage:
#   tests/bench.sh relay        # raw rdkafka produce rate vs the outbox relay
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench=${1:?usage: tests/bench.sh <relay>}
shift
case "$bench" in
    relay) package=throughcare-platform ;;
    *) log "unknown benchmark $bench"; exit 2 ;;
esac

ensure_postgres
ensure_tansu
trap cleanup EXIT
drop_test_databases
start_broker

cd "$here"
cargo bench -p "$package" --bench "$bench" -- "$@"
