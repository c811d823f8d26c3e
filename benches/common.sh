# Sourced by benches/run.sh and benches/instructions.sh: ports, the peers' configs, and the
# configs `mesh proxy` is benchmarked with.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Wait (30 s at most) until something accepts connections on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# peer_config TEMPLATE PORT OUTPUT: a peer's config (benches/peers/*.in) listening on
# 127.0.0.1:PORT, forwarding to $BACKEND, its files under $WORK.
peer_config() {
    sed -e "s|@LISTEN@|127.0.0.1:$2|" -e "s|@BACKEND@|$BACKEND|" -e "s|@WORK@|$WORK|g" "$1" >"$3"
}

# The mesh's config: the backend as a ServiceEntry and a VirtualService with $1 rules, the
# last one matching everything (the others match paths the load never sends).
mesh_config() {
    local rules=$1 backend_port=$2 file=$3
    {
        cat <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: bench}
spec:
  hosts: [backend.bench.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $backend_port}, labels: {app: backend, version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: bench}
spec:
  hosts: [backend.bench.svc.cluster.local]
  http:
EOF
        for i in $(seq 1 $((rules - 1))); do
            printf '  - match: [{uri: {prefix: /r%d/}}, {headers: {x-rule: {exact: "%d"}}}]\n    route: [{destination: {host: backend.bench.svc.cluster.local}}]\n' "$i" "$i"
        done
        printf '  - route: [{destination: {host: backend.bench.svc.cluster.local}}]\n    retries: {attempts: 2}\n'
    } >"$file"
}

# feature_config FEATURE BACKEND_PORT FILE: the backend as a ServiceEntry with two endpoints
# (subsets v1 and v2; both the one backend), a DestinationRule with those subsets, and a
# VirtualService whose one rule uses FEATURE (see `features` for the list). For
# benches/instructions.sh: what each traffic-management feature costs per request.
features="plain header-match split timeout-retries circuit-breaker consistent-hash mirror fault-abort"
feature_config() {
    local feature=$1 backend_port=$2 file=$3
    local host=backend.bench.svc.cluster.local
    local route="    route: [{destination: {host: $host, subset: v1}}]"
    local policy="{loadBalancer: {simple: ROUND_ROBIN}}"
    # The rule's first line: "  - route: ..."
    local first="  - ${route#    }" rule
    case $feature in
        plain) rule="$first" ;;
        header-match) rule="  - match: [{headers: {end-user: {exact: jason}}}]
$route
    headers: {request: {set: {x-canary: \"yes\"}}, response: {add: {x-served-by: mesh}}}" ;;
        split) rule="  - route: [{destination: {host: $host, subset: v1}, weight: 90}, {destination: {host: $host, subset: v2}, weight: 10}]" ;;
        timeout-retries) rule="$first
    timeout: 10s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}" ;;
        circuit-breaker) rule="$first"
            policy="{connectionPool: {tcp: {maxConnections: 100}, http: {http1MaxPendingRequests: 100}}, outlierDetection: {consecutive5xxErrors: 5, interval: 1s, baseEjectionTime: 30s}}" ;;
        consistent-hash) rule="$first"
            policy="{loadBalancer: {consistentHash: {httpHeaderName: end-user}}}" ;;
        mirror) rule="$first
    mirror: {host: $host, subset: v2}
    mirrorPercentage: {value: 100}" ;;
        fault-abort) rule="$first
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}" ;;
        *) echo "unknown feature $feature" >&2; return 1 ;;
    esac
    cat >"$file" <<CFG
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backend, namespace: bench}
spec:
  hosts: [$host]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.1, ports: {http: $backend_port}, labels: {app: backend, version: v1}}
  - {address: 127.0.0.1, ports: {http: $backend_port}, labels: {app: backend, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend, namespace: bench}
spec:
  host: $host
  trafficPolicy: $policy
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: bench}
spec:
  hosts: [$host]
  http:
$rule
CFG
}
