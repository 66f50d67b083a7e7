#!/usr/bin/env bash
# graceful-inject on the 120 kube-inject outputs concatenated ten times (~8 MB):
# wall time and peak memory, against the seed's approach (PyYAML load, patch,
# dump: benches/seed_pyyaml.py) in the same run.
#   benches/inject.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=../shared/corpus/istio-kube-inject
[ -d "$corpus" ] || { echo "SKIPPED: $corpus is absent"; exit 0; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

for i in $(seq 10); do
  for f in "$corpus"/*.injected; do cat "$f"; printf '\n---\n'; done
done > "$work/big.yaml"
cat > "$work/cfg.yml" <<'CFG'
graceful-wait:
  native-sidecars: wait
CFG
for k in deployment statefulset daemonset replicaset replicationcontroller job cronjob pod deploymentconfig; do
  printf '%s:\n  "*":\n    istio-proxy: {tcp: 15090}\n' "$k" >> "$work/cfg.yml"
done

cargo build --release --quiet -p graceful-inject
bin=target/x86_64-unknown-linux-gnu/release/graceful-inject
size=$(stat -c %s "$work/big.yaml")
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "== input: $size bytes, $(grep -c '^kind:' "$work/big.yaml") top-level objects"

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>&1
  read -r secs kib < "$work/time"
  echo "$label: ${secs} s wall, ${kib} KiB peak RSS ($(awk -v k="$kib" -v s="$size" 'BEGIN {printf "%.2f", k*1024/s}')x the input)"
  echo "$secs" > "$work/$label.secs"
}
measure graceful-inject "$bin" -q "$work/big.yaml" "$work/cfg.yml" "$work/out.yaml"
measure seed-pyyaml python3 benches/seed_pyyaml.py "$work/big.yaml" "$work/seed-out.yaml"
echo "== speed-up: $(awk -v a="$(cat "$work/seed-pyyaml.secs")" -v b="$(cat "$work/graceful-inject.secs")" 'BEGIN {printf "%.0fx", a/(b>0?b:0.001)}')"
