#!/usr/bin/env bash
# benches/rules_memory.sh — memory per VirtualService rule of a running `mesh proxy` (S3 of
# benches/run.sh, without the load): the S3 configs (benches/common.sh `mesh_config`, 10 and
# 10,000 rules, each a path prefix or a header match), one proxy each, VmRSS read from /proc once
# the proxy listens and has served a few requests; per rule = (RSS at 10,000 − RSS at 10) / 9,990.
# Then each config file is rewritten (a comment added) so the proxy reloads it, and RSS is read
# again: what a proxy holds after its first reload.
#
#   benches/rules_memory.sh                       # builds and measures target/release/mesh
#   MESH=/path/to/mesh RUNS=3 benches/rules_memory.sh
#
# The parts (store, snapshot, index) are measured in process by
# `cargo run -p mesh-tower --example rule_memory`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
MESH=${MESH:-}
if [ -z "$MESH" ]; then
    (cd "$ROOT" && cargo build --release -q -p mesh-proxy --bin mesh)
    MESH=$ROOT/target/release/mesh
fi
WORK=$(mktemp -d /tmp/meshwork-rules-memory.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# measure RULES RUN: prints "RSS_KB RSS_AFTER_RELOAD_KB"
measure() {
    # (The proxy's output stays outside the config directory: a change there is a reload.)
    local rules=$1 run=$2 dir="$WORK/mesh-$1-$2/config" log="$WORK/mesh-$1-$2" pid addr=""
    mkdir -p "$dir"
    # The backend port is never connected to: requests answer 503 after their retries.
    mesh_config "$rules" 9 "$dir/config.yaml"
    "$MESH" proxy -f "$dir" --listen 127.0.0.1:0 --threads 1 --reload-interval-ms 1000 -n bench \
        >"$log/out" 2>"$log/err" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 300); do
        addr=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$log/out" | head -1)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "mesh proxy did not start: $(cat "$log/err")" >&2; exit 1; }
    for i in $(seq 1 20); do
        curl -s -o /dev/null -m 2 -H "Host: backend.bench.svc.cluster.local" -H "x-rule: $i" "http://$addr/r$i/x" || true
    done
    sleep 1
    local first
    first=$(rss_kb "$pid")
    echo "# reload" >>"$dir/config.yaml"
    local generation=""
    for _ in $(seq 1 300); do
        generation=$(grep -c "configuration applied" "$log/err" || true)
        [ "${generation:-0}" -ge 2 ] && break
        sleep 0.1
    done
    sleep 1
    echo "$first $(rss_kb "$pid")"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

printf '%-4s %12s %12s %14s %14s %14s\n' run "RSS 10 kB" "RSS 10k kB" "B/rule" "reloaded 10k" "B/rule reload"
for run in $(seq 1 "$RUNS"); do
    read -r small small_reload < <(measure 10 "$run")
    read -r big big_reload < <(measure 10000 "$run")
    printf '%-4s %12s %12s %14s %14s %14s\n' "$run" "$small" "$big" \
        $(((big - small) * 1024 / 9990)) "$big_reload" $(((big_reload - small_reload) * 1024 / 9990))
done
