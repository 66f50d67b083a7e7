#!/usr/bin/env bash
# The admission webhook measured where the API server measures it: 1,000
# pod creations (a Deployment scaled 0 → 100 → 0 ten times, pods admitted
# and never scheduled) with the webhook installed by its chart, then the
# same with it uninstalled — the baseline, in the same run. Figures from the
# API server's /metrics (apiserver_request_duration_seconds of pod creates,
# apiserver_admission_webhook_admission_duration_seconds, rejections,
# fail-opens), the webhook's own /metrics and the kubelet's stats summary.
#   benches/webhook-cluster.sh        # as root; the test cluster of tests/cluster
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "benches/webhook-cluster.sh: run as root (the cluster runs containerd and the kubelet)" >&2; exit 2; }
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(rustc --version)"
tests/cluster/build
cargo build --release -q -p graceful-wait -p graceful-inject
report=$(mktemp)
trap 'rm -f "$report"' EXIT
GW_BINARY="$PWD/target/x86_64-unknown-linux-gnu/release/graceful-wait" \
GW_INJECT_BINARY="$PWD/target/x86_64-unknown-linux-gnu/release/graceful-inject" \
GW_WEBHOOK_LOAD_ONLY=1 GW_WEBHOOK_REPORT="$report" \
  cargo test -q -p graceful-wait --test webhook_cluster -- --include-ignored --skip helper_process --nocapture >/dev/null
grep -A20 '^1,000 pod creations' "$report"
