#!/usr/bin/env bash
# Installs the webhook without cert-manager: makes a CA and a serving
# certificate with openssl (valid 1 year), stores them in the Secret the
# Deployment mounts, applies the manifests, and puts the CA in the webhook
# configuration's caBundle. Run it again to renew (the webhook picks up the
# new Secret within seconds; the caBundle is replaced at the same time).
#   deploy/webhook/self-signed.sh            # apply to the current context
#   DRY_RUN=1 deploy/webhook/self-signed.sh  # print the manifests instead
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ns=graceful-wait
svc=graceful-inject-webhook
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=graceful-wait webhook CA" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=$svc.$ns.svc" -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\n' "$svc" "$ns" "$svc" "$ns" > "$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -days 365 -extfile "$work/ext" -out "$work/tls.crt" 2>/dev/null
ca=$(base64 -w0 < "$work/ca.crt")
secret=$(cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: $svc-tls
  namespace: $ns
type: kubernetes.io/tls
data:
  tls.crt: $(base64 -w0 < "$work/tls.crt")
  tls.key: $(base64 -w0 < "$work/tls.key")
  ca.crt: $ca
YAML
)
manifests() {
  for f in namespace serviceaccount config deployment pdb service; do cat "$here/$f.yaml"; echo "---"; done
  echo "$secret"; echo "---"
  # The webhook configuration with the CA filled in (and no cert-manager annotation).
  sed -e '/cert-manager.io\/inject-ca-from/d' -e '/^  annotations:$/d' \
      -e "s|^      service:|      caBundle: $ca\n      service:|" "$here/webhook.yaml"
}
if [ -n "${DRY_RUN:-}" ]; then
  manifests
else
  manifests | kubectl apply -f -
fi
