# Sourced by the bench and replay scripts: starts a throwaway `triage serve`
# on loopback with a fresh data directory and a one-off admin key.
#
#   start_triage BIN WORK PORT [SERVE ARGS...]
#
# WORK is a scratch directory the caller removes; the server logs to
# WORK/serve.log. Sets `key` (the bearer key) and `pid` (the server's), and
# returns once /readyz answers (or after 120 s; the caller's first call fails).
start_triage() {
    local bin=$1 work=$2 port=$3
    shift 3
    key=$(python3 -c 'import secrets; print("bench_" + secrets.token_hex(16))')
    local hash
    hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
    printf '[[key]]\nname = "bench"\nrole = "admin"\nsha256 = "%s"\n' "$hash" > "$work/keys.toml"
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --keys "$work/keys.toml" "$@" > "$work/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do
        curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break
        sleep 1
    done
}
