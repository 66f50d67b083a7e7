#!/bin/sh
# graceful-inject as Helm's post-renderer (Helm 4 plugin, or Helm 3's
# --post-renderer): the rendered manifests on stdin, the result on stdout,
# nothing else there; the summary and any error on stderr, with a non-zero
# exit on failure (Helm then stops the release).
#
# The config: the first --post-renderer-args value, or $GRACEFUL_INJECT_CONFIG.
# The program: $GRACEFUL_INJECT, else graceful-inject on PATH, else the
# plugin's own bin/graceful-inject.
#
# Helm 3 prints a failed post-renderer's stderr; Helm 4 keeps a plugin's
# stderr to itself and says only 'plugin "graceful-inject" exited with
# error'. So the messages are also written to $GRACEFUL_INJECT_LOG when it
# is set (CI), and a failure's to the terminal when there is one. No other
# channel exists: Helm 4's subprocess runtime collects the plugin's stderr in
# a buffer it never reads, and reports only the exit.
#
# A chart that renders no objects gives an empty stream, and Helm 4 refuses a
# post-renderer whose output is empty ("produced empty output"), so then a
# YAML comment stands in for it: a stream with no documents all the same.
set -eu
fail() {
  echo "graceful-inject post-renderer: $1" >&2
  if [ -n "${GRACEFUL_INJECT_LOG:-}" ]; then
    echo "graceful-inject post-renderer: $1" >>"$GRACEFUL_INJECT_LOG"
  fi
  { echo "graceful-inject post-renderer: $1" >/dev/tty; } 2>/dev/null || true
  exit 2
}
config=${1:-${GRACEFUL_INJECT_CONFIG:-}}
if [ -z "$config" ]; then
  fail "no config; pass it with --post-renderer-args PATH or set GRACEFUL_INJECT_CONFIG"
fi
program=${GRACEFUL_INJECT:-}
if [ -z "$program" ]; then
  if command -v graceful-inject >/dev/null 2>&1; then
    program=graceful-inject
  else
    program="${HELM_PLUGIN_DIR:-$(dirname "$0")}/bin/graceful-inject"
  fi
fi
messages=$(mktemp) || fail "cannot make a temporary file for the messages"
result=$(mktemp) || fail "cannot make a temporary file for the result"
trap 'rm -f "$messages" "$result"' EXIT
status=0
"$program" - "$config" >"$result" 2>"$messages" || status=$?
cat "$messages" >&2
if [ -n "${GRACEFUL_INJECT_LOG:-}" ]; then
  cat "$messages" >>"$GRACEFUL_INJECT_LOG"
fi
if [ "$status" -ne 0 ]; then
  { cat "$messages" >/dev/tty; } 2>/dev/null || true
  exit "$status"
fi
if grep -q '[^[:space:]]' "$result"; then
  cat "$result"
else
  echo "# graceful-inject: the chart rendered no objects"
fi
