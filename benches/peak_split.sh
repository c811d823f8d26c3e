#!/usr/bin/env bash
# benches/peak_split.sh — where each proxy's time goes at peak: for mesh proxy, the hyper
# pass-through, HAProxy and nginx (configured as benches/run.sh does, all up at once, taking
# turns), per request: rps, user and system CPU time (/proc/PID/stat), TCP segments sent on the
# machine (/proc/net/snmp OutSegs: 4 means every ACK rode on data) and minor page faults.
#
#   benches/peak_split.sh                   # 2 rounds of 5 s each
#   ROUNDS=3 D=5 benches/peak_split.sh
#
# Needs what benches/run.sh installs (wrk, haproxy, nginx) and a release build of mesh and the
# two helpers (run.sh builds them). Binds only 127.0.0.1; every run is bounded by wrk's -d.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
D=${D:-5}
ROUNDS=${ROUNDS:-2}
export PATH="$PATH:/usr/sbin:$HOME/.cargo/bin"
WORK=$(mktemp -d /tmp/meshwork-split.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

listening() { # FILE: the address a helper printed
    for _ in $(seq 1 100); do
        local a; a=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$1" 2>/dev/null | head -1)
        [ -n "$a" ] && { echo "$a"; return 0; }
        sleep 0.1
    done
    echo "nothing listening in $1" >&2; return 1
}

taskset -c 1 "$BIN/examples/bench_backend" 127.0.0.1:0 >"$WORK/backend.out" 2>&1 & PIDS+=($!)
BACKEND=$(listening "$WORK/backend.out")
mkdir -p "$WORK/mesh"
mesh_config 10 "${BACKEND##*:}" "$WORK/mesh/config.yaml"
taskset -c 0 "$BIN/mesh" proxy -f "$WORK/mesh" --listen 127.0.0.1:0 --threads 1 --reload-interval-ms 1000 -n bench \
    >"$WORK/mesh.out" 2>"$WORK/mesh.err" & MESH=$!; PIDS+=($MESH)
taskset -c 0 "$BIN/examples/bench_passthrough" 127.0.0.1:0 "$BACKEND" >"$WORK/pass.out" 2>&1 & PASS=$!; PIDS+=($PASS)
hport=$(free_port); peer_config "$ROOT/benches/peers/haproxy.cfg.in" "$hport" "$WORK/haproxy.cfg"
taskset -c 0 haproxy -W -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 & HAPROXY=$!; PIDS+=($HAPROXY)
nport=$(free_port); peer_config "$ROOT/benches/peers/nginx.conf.in" "$nport" "$WORK/nginx.conf"
taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 & NGINX=$!; PIDS+=($NGINX)
wait_port "$hport"; wait_port "$nport"
MESH_AT=$(listening "$WORK/mesh.out"); PASS_AT=$(listening "$WORK/pass.out")
HAPROXY_WORKER=$(pgrep -P "$HAPROXY" | head -1); NGINX_WORKER=$(pgrep -P "$NGINX" | head -1)

segments() { awk '/^Tcp:/ { n++; if (n == 2) print $12 }' /proc/net/snmp; }
cpu_faults() { awk '{ print $14, $15, $10 }' "/proc/$1/stat"; }
run() { # NAME PID ADDR
    local host="Host: backend.bench.svc.cluster.local"
    taskset -c 1 wrk -t1 -c16 -d1s -H "$host" "http://$3/" >/dev/null
    local s0 u0 k0 f0 s1 u1 k1 f1 out requests
    s0=$(segments); read -r u0 k0 f0 < <(cpu_faults "$2")
    out=$(taskset -c 1 wrk -t1 -c16 -d"${D}s" -H "$host" "http://$3/")
    s1=$(segments); read -r u1 k1 f1 < <(cpu_faults "$2")
    requests=$(echo "$out" | awk '/requests in/ { print $1 }')
    python3 -c "r=$requests; t=$(getconf CLK_TCK)
print(f'| $1 | {r/$D:,.0f} | {($u1-$u0)*1e6/t/r:.2f} | {($k1-$k0)*1e6/t/r:.2f} | {($s1-$s0)/r:.2f} | {($f1-$f0)*1000/r:.2f} |')"
}
echo "| proxy | rps | user µs / req | system µs / req | TCP segments / req | minor faults / 1000 req |"
echo "|---|---:|---:|---:|---:|---:|"
for _ in $(seq 1 "$ROUNDS"); do
    run "mesh proxy" "$MESH" "$MESH_AT"
    run "hyper pass-through" "$PASS" "$PASS_AT"
    run "HAProxy" "$HAPROXY_WORKER" "127.0.0.1:$hport"
    run "nginx" "$NGINX_WORKER" "127.0.0.1:$nport"
done
