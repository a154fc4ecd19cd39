#!/usr/bin/env bash
# Runs a benchmark against the real parts (PostgreSQL and the pinned tansu
# broker, started as for the tests) and prints its figures. Benchmarks print;
# they never assert times. Usage:
#   tests/bench.sh relay        # raw rdkafka produce rate vs the outbox relay
#   tests/bench.sh consume      # a bare rdkafka consumer vs the bus's replay and consume loop
#   tests/bench.sh ingest       # release notifications over gRPC vs durable PostgreSQL commits
#   tests/bench.sh disclosure   # disclosure decisions with the audit append; verifying 1M audit entries
#   tests/bench.sh aggregation  # the indicators core: live rate, national rebuild, rebuild from the broker
#   tests/bench.sh chaos        # the split deployment under a long fault schedule: 100,000 operations,
#                               # three of each fault; prints what was lost, doubled or out of order
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench=${1:?usage: tests/bench.sh <relay|consume|ingest|disclosure|aggregation|chaos>}
shift
case "$bench" in
    relay|consume) package=throughcare-platform ;;
    ingest) package=throughcare-referrals ;;
    disclosure) package=throughcare-sharing ;;
    aggregation) package=throughcare-indicators ;;
    chaos) package=throughcare-e2e ;;
    *) log "unknown benchmark $bench"; exit 2 ;;
esac

ensure_postgres
ensure_tansu
trap cleanup EXIT
drop_test_databases
start_broker

cd "$here"
if [ "$bench" = chaos ]; then
    # The chaos suite's own test, with a long schedule (CI runs a short one).
    cargo build --workspace --bins
    THROUGHCARE_CHAOS_EVENTS=${THROUGHCARE_CHAOS_EVENTS:-100000} \
        THROUGHCARE_CHAOS_ROUNDS=${THROUGHCARE_CHAOS_ROUNDS:-3} \
        cargo test -p throughcare-e2e --test e2e chaos:: -- --nocapture "$@"
    exit
fi
cargo bench -p "$package" --bench "$bench" -- "$@"
