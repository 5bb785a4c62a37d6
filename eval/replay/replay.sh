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
work=$(mktemp -d)
pid=""
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
. eval/bench/serve.sh
start_triage "$bin" "$work" "$port" --policy "$policy"
python3 eval/replay/replay.py --url "http://127.0.0.1:$port" --key "$key" --input "$messages" --lag-days "$lag" ${out:+--json "$out"}
