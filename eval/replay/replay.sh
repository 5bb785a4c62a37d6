#!/usr/bin/env bash
# Replay the real board messages through a fresh `triage serve` (embedded
# store in a temporary directory), in date order, each stored, and count the
# escalation rules' raises. Figures go to EVALUATION.md.
#
#   eval/replay/replay.sh [LAG_DAYS] [OUT.json]
#
# Environment: TRIAGE_BIN (default target/release/triage), POLICY (default
# models/policy.toml), MESSAGES (default ../shared/data/real/gov_messages.jsonl),
# PORT (default 18480).
set -euo pipefail
cd "$(dirname "$0")/../.."
lag=${1:-0}
out=${2:-}
bin=${TRIAGE_BIN:-target/release/triage}
policy=${POLICY:-models/policy.toml}
messages=${MESSAGES:-../shared/data/real/gov_messages.jsonl}
port=${PORT:-18480}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
printf '[[key]]\nname = "replay"\nrole = "platform"\nsha256 = "%s"\n' "$hash" > "$dir/keys.toml"
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --keys "$dir/keys.toml" --policy "$policy" 2> "$dir/serve.log" &
pid=$!
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
    sleep 1
done
python3 eval/replay/replay.py --url "http://127.0.0.1:$port" --key "$key" --input "$messages" --lag-days "$lag" ${out:+--json "$out"}
