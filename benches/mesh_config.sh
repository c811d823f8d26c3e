# Sourced by benches/run.sh and benches/instructions.sh: the config `mesh proxy` benchmarks with.

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
