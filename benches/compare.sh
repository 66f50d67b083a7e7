#!/usr/bin/env bash
# The release binaries of this tree beside earlier ones, in one run: their
# sizes, and graceful-inject's wall time and peak memory on the streams of
# benches/inject.sh (the corpus x10, many small Deployments), each run
# RUNS times, old and new in alternating order, the median kept; INPUTS picks
# the streams ("big many").
#   benches/compare.sh DIR   (DIR holds an earlier graceful-wait and graceful-inject)
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: benches/compare.sh DIR-with-earlier-binaries}
runs=${RUNS:-3}
corpus=../shared/corpus/istio-kube-inject
[ -d "$corpus" ] || { echo "SKIPPED: $corpus is absent"; exit 0; }
cargo build --release --quiet -p graceful-inject -p graceful-wait
new=target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
for b in graceful-wait graceful-inject; do
  echo "== size $b: before $(stat -c %s "$old/$b") bytes, after $(stat -c %s "$new/$b") bytes"
done

for i in $(seq 10); do
  for f in "$corpus"/*.injected; do cat "$f"; printf '\n---\n'; done
done > "$work/big.yaml"
printf 'graceful-wait:\n  native-sidecars: wait\n' > "$work/cfg.yml"
for k in deployment statefulset daemonset replicaset replicationcontroller job cronjob pod deploymentconfig; do
  printf '%s:\n  "*":\n    istio-proxy: {tcp: 15090}\n' "$k" >> "$work/cfg.yml"
done
python3 - "$work/many.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(270000):
        f.write(f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: example/app:{i}\n      - name: istio-proxy\n        image: istio/proxyv2:1.24.0\n")
PY

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for input in ${INPUTS:-big many}; do
  : > "$work/old.t"; : > "$work/new.t"; : > "$work/old.m"; : > "$work/new.m"
  for r in $(seq "$runs"); do
    # ABBA: the order alternates, so whatever the second run of a pair pays
    # (a warm page cache, a throttled CPU) is paid by both.
    order="old new"; [ $((r % 2)) = 0 ] && order="new old"
    for who in $order; do
      bin=$old/graceful-inject; [ "$who" = new ] && bin=$new/graceful-inject
      /usr/bin/time -f '%e %M' -o "$work/time" "$bin" -q "$work/$input.yaml" "$work/cfg.yml" "$work/out-$who.yaml"
      read -r secs kib < "$work/time"
      echo "$secs" >> "$work/$who.t"; echo "$kib" >> "$work/$who.m"
    done
  done
  cmp -s "$work/out-old.yaml" "$work/out-new.yaml" && same="outputs identical" || same="OUTPUTS DIFFER"
  echo "== $input ($(stat -c %s "$work/$input.yaml") bytes), median of $runs: before $(median < "$work/old.t") s, $(median < "$work/old.m") KiB; after $(median < "$work/new.t") s, $(median < "$work/new.m") KiB; $same"
done
