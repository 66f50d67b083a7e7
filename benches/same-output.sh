#!/usr/bin/env bash
# Whether this tree's graceful-inject answers exactly as an earlier build: every
# golden case's config (config/test/*/config.yml, with the case's args) run on
# every input there is here — the golden inputs, the corpus's kube-inject
# outputs and the workloads they were made from — comparing the output, the
# summary on stderr and the exit status, byte for byte. For a change meant to
# leave behaviour alone.
#   benches/same-output.sh DIR   (DIR holds an earlier graceful-inject)
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: benches/same-output.sh DIR-with-an-earlier-graceful-inject}/graceful-inject
corpus=../shared/corpus
cargo build --release --quiet -p graceful-inject
new=target/x86_64-unknown-linux-gnu/release/graceful-inject
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
inputs=(config/test/*/input.yaml)
[ -d "$corpus" ] && inputs+=("$corpus"/istio-kube-inject/* "$corpus"/istio-kube-inject-inputs/*)
runs=0 differ=0
for case in config/test/*/; do
  args=(); [ -f "$case/args" ] && read -r -a args < "$case/args"
  for input in "${inputs[@]}"; do
    for who in old new; do
      bin=$old; [ "$who" = new ] && bin=$new
      set +e
      "$bin" "${args[@]}" "$input" "$case/config.yml" "$work/$who.out" 2> "$work/$who.err"
      echo $? > "$work/$who.status"
      set -e
      [ -f "$work/$who.out" ] || : > "$work/$who.out"
    done
    runs=$((runs + 1))
    for part in out err status; do
      if ! cmp -s "$work/old.$part" "$work/new.$part"; then
        differ=$((differ + 1))
        echo "DIFFERS ($part): $case on $input"
        diff "$work/old.$part" "$work/new.$part" | head -5 || true
        break
      fi
    done
    rm -f "$work"/{old,new}.out
  done
done
echo "== $runs runs, $differ differ"
[ "$differ" = 0 ]
