#!/usr/bin/env bash
# benches/run.sh — meshwork's proxy benchmarks side by side with HAProxy and nginx (S2–S5 of
# issue 7; S1, the in-process stack, is `cargo bench -p mesh-tower --bench stack`).
#
#   benches/run.sh                 # everything, 5 runs of 10 s per point (about 25 minutes)
#   RUNS=3 DURATION=5 benches/run.sh
#
# What it does:
# - installs haproxy, nginx and wrk with apt-get and oha with `cargo install oha --locked` when
#   they are missing; builds `mesh` and the two helpers (bench_backend, bench_passthrough);
# - binds only 127.0.0.1; pins each proxy to CPU 0 and the backend and load generators to CPU 1;
# - S2: peak rps (wrk, 16 connections, keep-alive) and latency at fixed rates (oha, open loop,
#   `--latency-correction`) for: no proxy, a minimal hyper pass-through, `mesh proxy`, HAProxy
#   (nbthread 1), nginx (worker_processes 1) — same backend, 1 KB responses. Every proxy is up
#   at once and the runs take turns (run 1 of each, run 2 of each, ...), so that the machine's
#   drift over minutes falls on every proxy alike;
# - S3: `mesh proxy` peak rps with 10 vs 10,000 rules, and RSS per rule;
# - S4: CPU seconds of each proxy over all its 1000 rps runs and its peak RSS, from /proc;
# - S5: 1000 rps while the proxy reloads every second (mesh: file rewrite; HAProxy: master-worker
#   USR2; nginx: `nginx -s reload`): errors and p99 vs steady state;
# - writes raw results under benches/results/ and, with benches/report.py, the tables in
#   benches/RESULTS.md (between the run.sh markers) and SVG plots in benches/plots/.
# Every run is bounded: wrk/oha by -d/-z, every wait by a timeout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RATES=${RATES:-"20 200 1000 2000"}
CONNS=${CONNS:-16}
PROXIES=${PROXIES:-"none passthrough mesh haproxy nginx"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=$ROOT/benches/results
WORK=$(mktemp -d /tmp/meshwork-bench.XXXXXX)
HOST_HEADER="Host: backend.bench.svc.cluster.local"
PIDS=()

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for f in "$WORK"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools -----------------------------------------------------------------------------------
need_apt=()
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v wrk >/dev/null || need_apt+=(wrk)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:$HOME/.cargo/bin"
if ! command -v oha >/dev/null; then
    log "installing oha (cargo install oha --locked; a long build)"
    cargo install oha --locked
fi
log "building mesh and the helpers (release)"
(cd "$ROOT" && cargo build --release -q -p mesh-proxy --bin mesh --example bench_backend --example bench_passthrough)
BIN=$ROOT/target/release
mkdir -p "$OUT/raw"
rm -f "$OUT"/raw/*

# --- helpers ---------------------------------------------------------------------------------
# Start a command pinned to a CPU that prints "listening on ADDR"; echo the address.
start_listening() {
    local cpu=$1 name=$2; shift 2
    # (called in $(...): the pid is kept in a file, not in PIDS)
    taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    echo $! >"$WORK/$name.pid"
    for _ in $(seq 1 100); do
        if grep -q "^listening on" "$WORK/$name.out" 2>/dev/null; then
            sed -n 's/^listening on \([^ ]*\).*/\1/p' "$WORK/$name.out" | head -1
            return 0
        fi
        sleep 0.1
    done
    log "$name did not start: $(cat "$WORK/$name.err")"
    return 1
}

# free_port, wait_port, peer_config, and the mesh configs (mesh_config, feature_config).
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

# Start proxy $1 in front of $BACKEND; sets TARGET (host:port) and PROXY_PID (the process whose
# tree is measured).
start_proxy() {
    local name=$1 port
    PROXY_PID=""
    case $name in
        none)
            TARGET=$BACKEND ;;
        passthrough)
            TARGET=$(start_listening "$PROXY_CPU" passthrough "$BIN/examples/bench_passthrough" 127.0.0.1:0 "$BACKEND")
            PROXY_PID=$(cat "$WORK/passthrough.pid") ;;
        mesh|mesh10k)
            local rules=10; [ "$name" = mesh10k ] && rules=10000
            mkdir -p "$WORK/mesh-$rules"
            mesh_config "$rules" "${BACKEND##*:}" "$WORK/mesh-$rules/config.yaml"
            TARGET=$(start_listening "$PROXY_CPU" "$name" "$BIN/mesh" proxy -f "$WORK/mesh-$rules" \
                --listen 127.0.0.1:0 --threads 1 --reload-interval-ms 1000 -n bench)
            PROXY_PID=$(cat "$WORK/$name.pid") ;;
        haproxy)
            port=$(free_port)
            peer_config "$ROOT/benches/peers/haproxy.cfg.in" "$port" "$WORK/haproxy.cfg"
            taskset -c "$PROXY_CPU" haproxy -W -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 &
            PIDS+=($!); PROXY_PID=$!
            wait_port "$port" || exit 1; TARGET=127.0.0.1:$port ;;
        nginx)
            port=$(free_port)
            peer_config "$ROOT/benches/peers/nginx.conf.in" "$port" "$WORK/nginx.conf"
            taskset -c "$PROXY_CPU" nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
            PIDS+=($!); PROXY_PID=$!
            wait_port "$port" || exit 1; TARGET=127.0.0.1:$port ;;
    esac
}

stop_proxy() {
    [ -n "${PROXY_PID:-}" ] || return 0
    pkill -TERM -P "$PROXY_PID" 2>/dev/null || true
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PROXY_PID" 2>/dev/null || true
    rm -f "$WORK/nginx.pid" "$WORK/haproxy.pid"
}

# CPU ticks (utime+stime) of a process and its children, and the sum of their peak RSS (kB).
tree_pids() { echo "$1"; pgrep -P "$1" 2>/dev/null || true; }
cpu_ticks() {
    local total=0
    for p in $(tree_pids "$1"); do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo $total
}
peak_rss_kb() {
    local total=0
    for p in $(tree_pids "$1"); do
        [ -r "/proc/$p/status" ] || continue
        total=$((total + $(awk '/^VmHWM:/ {print $2}' "/proc/$p/status")))
    done
    echo $total
}
rss_kb() {
    local total=0
    for p in $(tree_pids "$1"); do
        [ -r "/proc/$p/status" ] || continue
        total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
    done
    echo $total
}

wrk_warmup() {
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "$HOST_HEADER" "http://$TARGET/" >/dev/null
}
wrk_run() { # $1 = label, $2 = run
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "$HOST_HEADER" "http://$TARGET/" \
        >"$OUT/raw/peak-$1-$2.txt"
}

# Every proxy of $* up at once (idle ones cost nothing: each waits in epoll), so that the runs
# can take turns. TARGETS/PROXY_PIDS keep each one's address and process.
declare -A TARGETS PROXY_PIDS
start_all() {
    for proxy in "$@"; do
        start_proxy "$proxy"
        TARGETS[$proxy]=$TARGET
        PROXY_PIDS[$proxy]=${PROXY_PID:-}
    done
}
use_proxy() { TARGET=${TARGETS[$1]}; PROXY_PID=${PROXY_PIDS[$1]}; }
stop_all() {
    for proxy in "$@"; do
        use_proxy "$proxy"
        stop_proxy
    done
}

# Peak rps of every proxy in $*, the runs taking turns (run 1 of each, then run 2 of each, ...):
# this machine's speed drifts by up to ~20 % over minutes, and turns spread the drift over every
# proxy alike instead of handing one proxy a slow stretch. $LABEL_PREFIX prefixes the labels.
peak_in_turns() {
    for proxy in "$@"; do
        use_proxy "$proxy"
        wrk_warmup
    done
    for run in $(seq 1 "$RUNS"); do
        for proxy in "$@"; do
            use_proxy "$proxy"
            wrk_run "${LABEL_PREFIX:-}$proxy" "$run"
        done
    done
}

oha_rate() { # $1 = label, $2 = rate, $3 = run, [$4 = duration]
    local duration=${4:-$DURATION}
    timeout $((duration + 30)) taskset -c "$LOAD_CPU" oha --no-tui --output-format json --latency-correction \
        -q "$2" -z "${duration}s" -c "$CONNS" -H "$HOST_HEADER" "http://$TARGET/" >"$OUT/raw/rate-$1-$2-$3.json"
}

# --- run -------------------------------------------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) x $(nproc)"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "haproxy: $(haproxy -v 2>&1 | head -1)"
    echo "nginx: $(nginx -v 2>&1)"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    echo "oha: $(oha --version)"
    echo "mesh: $(git -C "$ROOT" rev-parse --short HEAD)"
    echo "command: RUNS=$RUNS DURATION=$DURATION RATES=\"$RATES\" CONNS=$CONNS benches/run.sh"
} >"$OUT/raw/machine.txt"

BACKEND=$(start_listening "$LOAD_CPU" backend "$BIN/examples/bench_backend" 127.0.0.1:0)
log "backend on $BACKEND"

# S2 peak: every proxy up, runs in turns.
# shellcheck disable=SC2086 # word splitting of the lists is intended
start_all $PROXIES
log "peak rps ($RUNS x ${DURATION}s each, in turns): $PROXIES"
# shellcheck disable=SC2086
peak_in_turns $PROXIES
# shellcheck disable=SC2086
stop_all $PROXIES

# S2 fixed rates and S4: fresh processes, so that each one's peak RSS is that of these rates and
# not of the closed-loop peak runs; at each rate the runs take turns too.
# shellcheck disable=SC2086
start_all $PROXIES
for rate in $RATES; do
    log "$rate rps ($RUNS x ${DURATION}s each, in turns)"
    for proxy in $PROXIES; do
        use_proxy "$proxy"
        oha_rate "$proxy" "$rate" warmup "$WARMUP"
    done
    for run in $(seq 1 "$RUNS"); do
        for proxy in $PROXIES; do
            use_proxy "$proxy"
            # S4: the CPU time of every 1000-rps run (summed by report.py: 5 s at 100 ticks a
            # second is too coarse alone), and the peak RSS so far.
            if [ "$rate" = 1000 ] && [ -n "$PROXY_PID" ]; then
                before=$(cpu_ticks "$PROXY_PID")
                oha_rate "$proxy" "$rate" "$run"
                after=$(cpu_ticks "$PROXY_PID")
                echo "$proxy $((after - before)) $(getconf CLK_TCK) $DURATION $(peak_rss_kb "$PROXY_PID")" >>"$OUT/raw/resources.txt"
            else
                oha_rate "$proxy" "$rate" "$run"
            fi
        done
    done
done
# shellcheck disable=SC2086
stop_all $PROXIES

# S3: 10 vs 10,000 rules, end to end.
start_all mesh mesh10k
log "peak rps for S3 (in turns): mesh mesh10k"
LABEL_PREFIX=s3- peak_in_turns mesh mesh10k
for proxy in mesh mesh10k; do
    use_proxy "$proxy"
    echo "$proxy $(rss_kb "$PROXY_PID")" >>"$OUT/raw/rules-rss.txt"
done
stop_all mesh mesh10k

# S5: reload every second under 1000 rps, against steady state.
reload_loop() { # $1 = proxy, runs until killed
    local i=0
    while true; do
        sleep 1
        i=$((i + 1))
        case $1 in
            mesh) # alternate the last rule's retry attempts (a real change), then SIGHUP: re-read,
                # re-validated and swapped
                sed -i "s/attempts: [0-9]*/attempts: $((2 + i % 2))/" "$WORK/mesh-10/config.yaml"
                kill -HUP "$PROXY_PID" ;;
            haproxy) kill -USR2 "$PROXY_PID" ;;
            nginx) nginx -c "$WORK/nginx.conf" -p "$WORK" -s reload 2>/dev/null ;;
        esac
        echo "$i" >"$WORK/reloads-$1.tmp" && mv "$WORK/reloads-$1.tmp" "$WORK/reloads-$1"
    done
}
for proxy in mesh haproxy nginx; do
    start_proxy "$proxy"
    log "$proxy: reload every second under 1000 rps"
    oha_rate "s5-steady-$proxy" 1000 1
    reload_loop "$proxy" &
    loop=$!
    oha_rate "s5-reload-$proxy" 1000 1
    kill "$loop" 2>/dev/null || true
    wait "$loop" 2>/dev/null || true
    echo "$proxy $(cat "$WORK/reloads-$proxy" 2>/dev/null || echo 0)" >>"$OUT/raw/reloads.txt"
    stop_proxy
done

log "report"
python3 "$ROOT/benches/report.py" "$OUT/raw" "$ROOT/benches"
log "done: benches/RESULTS.md, benches/plots/"
