#!/usr/bin/env bash
# graceful-inject's wall time and peak memory on two streams:
# - the 120 kube-inject outputs concatenated ten times (~8 MB), against the
#   original Python tool's approach (PyYAML load, patch, dump:
#   benches/original_pyyaml.py) in the same run;
# - many small objects: 270,000 small Deployments (~62 MB; MANY sets the count)
#   and half as many, where memory must follow the largest document, not the
#   stream, and time must grow linearly.
# graceful-inject on the corpus is timed RUNS times (default 5; the median is
# kept), on all cores and on one (-j 1); the rest once.
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

# Wall time to the millisecond (the median of RUNS runs, 1 unless set) and
# the largest peak RSS of them; user+sys CPU time of the median run.
measure() { # label, command...
  local label=$1; shift
  : > "$work/runs"
  for _ in $(seq "${RUNS:-1}"); do
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$work/time" "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 )) $(cat "$work/time")" >> "$work/runs"
  done
  read -r ms kib user sys < <(sort -n "$work/runs" | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')
  kib=$(sort -k2 -n "$work/runs" | tail -1 | awk '{print $2}')
  local secs; secs=$(awk -v m="$ms" 'BEGIN {printf "%.3f", m/1000}')
  echo "$label: ${secs} s wall (CPU ${user} s user, ${sys} s sys), ${kib} KiB peak RSS ($(awk -v k="$kib" -v s="$size" 'BEGIN {printf "%.2f", k*1024/s}')x the input)"
  echo "$secs" > "$work/$label.secs"
}
RUNS=${RUNS:-5} measure graceful-inject "$bin" -q "$work/big.yaml" "$work/cfg.yml" "$work/out.yaml"
RUNS=${RUNS:-5} measure graceful-inject-one-thread "$bin" -q -j 1 "$work/big.yaml" "$work/cfg.yml" "$work/out1.yaml"
cmp -s "$work/out.yaml" "$work/out1.yaml" || { echo "one thread and several wrote different outputs"; exit 1; }
RUNS=${RUNS:-5} measure graceful-inject-stdout sh -c "\"$bin\" -q \"$work/big.yaml\" \"$work/cfg.yml\" - > \"$work/out2.yaml\""
RUNS=1 measure original-pyyaml python3 benches/original_pyyaml.py "$work/big.yaml" "$work/original-out.yaml"
speedup() { awk -v a="$(cat "$work/original-pyyaml.secs")" -v b="$(cat "$work/$1.secs")" 'BEGIN {printf "%.0fx", a/(b>0?b:0.001)}'; }
echo "== speed-up: $(speedup graceful-inject) ($(speedup graceful-inject-one-thread) on one thread, -j 1)"

# Many small objects: N and N/2, for memory that follows the largest document
# (not the stream) and time that grows linearly.
many() { # count, file
  python3 - "$1" "$2" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(n):
        f.write(f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: example/app:{i}\n      - name: istio-proxy\n        image: istio/proxyv2:1.24.0\n")
PY
}
n=${MANY:-270000}
many "$n" "$work/many.yaml"
many $((n / 2)) "$work/half.yaml"
size=$(stat -c %s "$work/many.yaml")
echo "== input: $size bytes, $n small Deployments, a wait on istio-proxy in each (and $((n / 2)))"
measure graceful-inject-many "$bin" -q "$work/many.yaml" "$work/cfg.yml" "$work/many-out.yaml"
measure graceful-inject-half "$bin" -q "$work/half.yaml" "$work/cfg.yml" "$work/half-out.yaml"
echo "== output: $(stat -c %s "$work/many-out.yaml") bytes"
echo "== time for $n over time for $((n / 2)): $(awk -v a="$(cat "$work/graceful-inject-many.secs")" -v b="$(cat "$work/graceful-inject-half.secs")" 'BEGIN {printf "%.2f", a/(b>0?b:0.001)}')"
