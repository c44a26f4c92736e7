#!/usr/bin/env bash
# Runs every benchmark of the performance report in sequence and prints each
# one's summary lines (the ratios against its same-run baseline); the full
# output of each is kept in $BENCH_LOG_DIR/<bench>.log.
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust), or
# TEST_DATABASE_SERVER. Usage: scripts/bench.sh [bench ...] (default: all).
# One build first (release, minutes on 2 cores), then the runs (~15 min).
set -euo pipefail

cd "$(dirname "$0")/.."

benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
    benches=(webhook_ingest sync_apply job_drain item_queries)
fi
log_dir=${BENCH_LOG_DIR:-target/bench-logs}
mkdir -p "$log_dir"

bench_args=()
for b in "${benches[@]}"; do
    bench_args+=(--bench "$b")
done
echo "== building: ${benches[*]} =="
cargo bench --no-run "${bench_args[@]}"

# Lines that carry a bench's result: phase headers, ratios, findings, and
# everything from a "== summary" header on (log lines on stderr left out).
summary='^==|->|sync/COPY|!!|RSS|check:'

failed=()
for b in "${benches[@]}"; do
    log="$log_dir/$b.log"
    echo
    echo "################ $b (full output: $log) ################"
    started=$(date +%s)
    if cargo bench --bench "$b" >"$log" 2>&1; then
        status=ok
    else
        status="FAILED (exit $?)"
        failed+=("$b")
    fi
    awk -v re="$summary" '/WARN/ { next } /^== summary/ { tail = 1 } tail || $0 ~ re' "$log"
    echo "-- $b: $status in $(($(date +%s) - started)) s"
done

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]} (see their logs)"
    exit 1
fi
echo "all benches ran: ${benches[*]}"
