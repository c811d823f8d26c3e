#!/usr/bin/env bash
# benches/instructions.sh — user-space instructions per request, counted by callgrind:
# - S2: `mesh proxy` (10 rules, as benches/run.sh), the hyper pass-through, and HAProxy and nginx
#   when installed (configured as benches/run.sh does), one request at a time;
# - the mesh proxy with one rule per traffic-management feature (header match, split, retries,
#   circuit breaker, consistent hash, mirror, fault abort; FEATURES=0 skips them);
# - S1: the in-process mesh stack and the bare hyper-util client (client and server in one
#   process, the setup of `cargo bench -p mesh-tower --bench stack`), counted between the
#   `stack_driver` bench's warm-up and the end of its requests.
#
#   benches/instructions.sh                    # builds, then 2,000 requests each
#   N=5000 BIN=target/release benches/instructions.sh
#
# Instruction counts do not depend on what else the machine is doing (unlike rps on a shared
# 2-core machine), so this is the figure to compare before and after a change to the hot path.
# The proxy runs under valgrind; after 300 warm-up requests its counters are zeroed, N requests
# are sent (oha, 1 connection, keep-alive), and the counters are dumped. Kernel time is not
# counted (see benches/run.sh for the end-to-end figures).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-2000}
BIN=${BIN:-$ROOT/target/release}
export PATH="$PATH:$HOME/.cargo/bin"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
command -v oha >/dev/null || cargo install oha --locked
(cd "$ROOT" && cargo build --release -q -p mesh-proxy --bin mesh --example bench_backend --example bench_passthrough)
# The S1 driver: cargo prints the bench executable's path.
DRIVER=$(cd "$ROOT" && cargo bench -q -p mesh-tower --bench stack_driver --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="stack_driver" and m.get("executable"): print(m["executable"])')
WORK=$(mktemp -d /tmp/meshwork-instr.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

wait_listening() {
    for _ in $(seq 1 150); do
        local addr
        addr=$(grep -ho 'listening on [0-9.:]*' "$@" 2>/dev/null | head -1 | awk '{print $3}' || true)
        [ -n "$addr" ] && { echo "$addr"; return; }
        sleep 0.2
    done
    echo "no listening line in $*" >&2; exit 1
}

"$BIN/examples/bench_backend" 127.0.0.1:0 >"$WORK/backend.out" 2>&1 &
PIDS+=($!)
BACKEND=$(wait_listening "$WORK/backend.out")
mkdir -p "$WORK/cfg"
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
mesh_config 10 "${BACKEND##*:}" "$WORK/cfg/config.yaml"

# count NAME CMD...: instructions per request of CMD, a proxy that prints "listening on ADDR" or,
# with PORT set, listens on 127.0.0.1:$PORT.
count() {
    local name=$1; shift
    valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$WORK/$name.cg" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=($pid)
    local addr
    if [ -n "${PORT:-}" ]; then
        wait_port "$PORT" || exit 1
        addr=127.0.0.1:$PORT
    else
        addr=$(wait_listening "$WORK/$name.out" "$WORK/$name.err")
    fi
    local url="http://$addr/"
    local headers=(-H "Host: backend.bench.svc.cluster.local")
    [ -n "${EXTRA_HEADER:-}" ] && headers+=(-H "$EXTRA_HEADER")
    oha --no-tui -n 300 -c 1 "${headers[@]}" "$url" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    oha --no-tui -n "$N" -c 1 "${headers[@]}" "$url" >"$WORK/$name.oha"
    callgrind_control -d "$pid" >/dev/null 2>&1
    # The dump requested after zeroing is part 1; wait until it is complete.
    local dump="$WORK/$name.cg.1" total=""
    for _ in $(seq 1 100); do
        total=$(grep -sh '^totals' "$dump" | awk '{print $2}' || true)
        [ -n "$total" ] && break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    [ -n "$total" ] || { echo "no callgrind dump for $name" >&2; exit 1; }
    echo "$name $((total / N))"
}

pass=$(count passthrough "$BIN/examples/bench_passthrough" 127.0.0.1:0 "$BACKEND" | awk '{print $2}')
mesh=$(count mesh "$BIN/mesh" proxy -f "$WORK/cfg" --listen 127.0.0.1:0 --threads 1 -n bench \
    --reload-interval-ms 100000 | awk '{print $2}')
# The peers, as benches/run.sh configures them (one process each: nginx without its master).
haproxy=""; nginx=""
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ -x "$HAPROXY" ]; then
    port=$(free_port)
    peer_config "$ROOT/benches/peers/haproxy.cfg.in" "$port" "$WORK/haproxy.cfg"
    haproxy=$(PORT=$port count haproxy "$HAPROXY" -db -f "$WORK/haproxy.cfg" | awk '{print $2}')
fi
if [ -x "$NGINX" ]; then
    port=$(free_port)
    peer_config "$ROOT/benches/peers/nginx.conf.in" "$port" "$WORK/nginx.conf"
    nginx=$(PORT=$port count nginx "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" -g 'master_process off;' | awk '{print $2}')
fi
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo "user-space instructions per request ($N requests, 1 connection, callgrind)"
echo "  hyper pass-through: $pass"
echo "  mesh proxy:         $mesh"
echo "  added by the mesh:  $((mesh - pass)) ($(ratio "$mesh" "$pass")x the pass-through)"
[ -n "$haproxy" ] && echo "  HAProxy:            $haproxy (mesh: $(ratio "$mesh" "$haproxy")x)"
[ -n "$nginx" ] && echo "  nginx:              $nginx (mesh: $(ratio "$mesh" "$nginx")x)"

# What each traffic-management feature costs: the mesh proxy with one VirtualService rule using
# it (benches/common.sh, `feature_config`); every request carries `end-user: jason`, which
# the header match and the consistent hash read. FEATURES=0 skips these.
if [ "${FEATURES:-1}" != 0 ]; then
    echo "mesh proxy, one rule per feature (instructions per request, $N requests, 1 connection):"
    for feature in $features; do
        mkdir -p "$WORK/feature-$feature"
        feature_config "$feature" "${BACKEND##*:}" "$WORK/feature-$feature/config.yaml"
        cost=$(EXTRA_HEADER="end-user: jason" count "feature-$feature" "$BIN/mesh" proxy -f "$WORK/feature-$feature" \
            --listen 127.0.0.1:0 --threads 1 -n bench --reload-interval-ms 100000 | awk '{print $2}')
        codes=$(grep -A4 'Status code distribution' "$WORK/feature-$feature.oha" | grep -o '\[[0-9]*\] [0-9]*' | tr '\n' ' ')
        printf '  %-16s %7s  (answers: %s)\n' "$feature" "$cost" "$codes"
    done
fi

# S1: in process. The driver says `ready` after its warm-up and `done` after the N requests, each
# time waiting for a line on stdin: the counters are zeroed and dumped in between.
s1() {
    local fifo="$WORK/s1-$1.in" out="$WORK/s1-$1.out"
    mkfifo "$fifo"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/s1-$1.cg" "$DRIVER" "$1" "$N" wait \
        <"$fifo" >"$out" 2>/dev/null &
    local pid=$!
    PIDS+=($pid)
    exec 7>"$fifo"
    local said
    for said in ready done; do
        for _ in $(seq 1 3000); do grep -q "^$said" "$out" 2>/dev/null && break; sleep 0.1; done
        grep -q "^$said" "$out" || { echo "the S1 driver did not say $said" >&2; exit 1; }
        if [ "$said" = ready ]; then
            callgrind_control -z "$pid" >/dev/null 2>&1
        else
            callgrind_control -d "$pid" >/dev/null 2>&1
        fi
        echo go >&7
    done
    exec 7>&-
    wait "$pid" || true
    echo $(( $(grep '^totals' "$WORK/s1-$1.cg.1" | awk '{print $2}') / N ))
}
bare=$(s1 bare)
stack=$(s1 mesh)
echo "in process, client and server together ($N requests, 1 connection, callgrind)"
echo "  bare hyper-util client: $bare"
echo "  mesh stack:             $stack"
echo "  added by the mesh:      $((stack - bare)) ($(python3 -c "print(f'{$stack/$bare:.2f}')")x the bare client)"
