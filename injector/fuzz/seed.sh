#!/usr/bin/env bash
# Seeds the fuzz corpora from the golden cases and ../shared/corpus.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/rewrite corpus/yaml_reader corpus/config corpus/shell_loop
for d in ../../config/test/*/; do
  n=$(basename "$d")
  cp "$d/input.yaml" "corpus/rewrite/$n"
  cp "$d/input.yaml" "corpus/yaml_reader/$n"
  cp "$d/config.yml" "corpus/config/$n"
done
if [ -d ../../../shared/corpus/istio-kube-inject ]; then
  for f in ../../../shared/corpus/istio-kube-inject/*.injected; do
    cp "$f" corpus/rewrite/; cp "$f" corpus/yaml_reader/
  done
fi
printf '%s' 'while [ 1==1 ]; do netstat -tulpn | grep LISTEN | grep :20000; if [ $? -gt 0 ]; then  break; fi; sleep 1; done' > corpus/shell_loop/original-tcp
printf '%s' 'while true; do curl -sf localhost:3000/health || break; sleep 1; done' > corpus/shell_loop/curl
