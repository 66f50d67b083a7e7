#!/bin/sh
# graceful-inject as Helm's post-renderer (Helm 4 plugin, or Helm 3's
# --post-renderer): the rendered manifests on stdin, the result on stdout,
# nothing else there; the summary and any error on stderr, with a non-zero
# exit on failure (Helm then stops the release).
#
# The config: the first --post-renderer-args value, or $GRACEFUL_INJECT_CONFIG.
# The program: $GRACEFUL_INJECT, else graceful-inject on PATH, else the
# plugin's own bin/graceful-inject.
set -eu
config=${1:-${GRACEFUL_INJECT_CONFIG:-}}
if [ -z "$config" ]; then
  echo "graceful-inject post-renderer: no config; pass it with --post-renderer-args PATH or set GRACEFUL_INJECT_CONFIG" >&2
  exit 2
fi
program=${GRACEFUL_INJECT:-}
if [ -z "$program" ]; then
  if command -v graceful-inject >/dev/null 2>&1; then
    program=graceful-inject
  else
    program="${HELM_PLUGIN_DIR:-$(dirname "$0")}/bin/graceful-inject"
  fi
fi
exec "$program" - "$config"
