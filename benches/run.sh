#!/usr/bin/env bash
# Every figure of the README's performance section, in one run:
#   benches/run.sh
# - stripped size of the static release binary (glibc static, the tested build;
#   musl too where that target is installed);
# - peak RSS (/usr/bin/time -v) of a tcp and an http wait that poll ten times;
# - cost of one in-process tcp check, netlink vs /proc (criterion, benches/check.rs);
# - the event-driven waits beside the original shell loops: reaction, CPU while
#   waiting, start-up (benches/events.rs; as root, in a namespace of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
bin=target/$target/release/graceful-wait

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(rustc --version)"

# Sizes: the default build (with tls-dns: HTTPS and DNS for callbacks) and the
# slim one (--no-default-features), glibc static and, where it can be built, musl.
slim=$(mktemp); trap 'rm -f "$slim"' EXIT
cargo build --release --quiet -p graceful-wait --no-default-features
cp "$bin" "$slim"
echo "== size, glibc static, slim (no tls-dns): $(stat -c %s "$bin") bytes stripped"
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  cargo build --release --quiet -p graceful-wait --target x86_64-unknown-linux-musl --no-default-features
  echo "== size, musl static, slim: $(stat -c %s target/x86_64-unknown-linux-musl/release/graceful-wait) bytes stripped"
  if command -v musl-gcc >/dev/null; then # ring (TLS) compiles C for the target
    cargo build --release --quiet -p graceful-wait --target x86_64-unknown-linux-musl
    echo "== size, musl static, default: $(stat -c %s target/x86_64-unknown-linux-musl/release/graceful-wait) bytes stripped"
  else
    echo "== size, musl static, default: skipped (no musl-gcc; apt-get install musl-tools)"
  fi
else
  echo "== size, musl: target not installed, skipped"
fi
cargo build --release --quiet -p graceful-wait
echo "== size, glibc static, default: $(stat -c %s "$bin") bytes stripped, $(file -b "$bin" | cut -d, -f1-2,4)"

# A listener the waits can watch for one second (ten polls at 100ms).
python3 - <<'PY' &
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 18431)); s.listen()
open("/tmp/gw-bench-ready", "w").close()
end = time.time() + 10
s.settimeout(0.2)
while time.time() < end:
    try:
        c, _ = s.accept(); c.recv(4096); c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"); c.close()
    except OSError:
        pass
PY
listener=$!
trap 'kill $listener 2>/dev/null; rm -f /tmp/gw-bench-ready "$slim"' EXIT
while [ ! -e /tmp/gw-bench-ready ]; do sleep 0.05; done
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
echo "== peak RSS, tcp wait (netlink), 1s of polling: $(rss "$bin" -q tcp --port 18431 --timeout 1s || true) KiB"
echo "== peak RSS, tcp wait (proc), 1s of polling: $(rss "$bin" -q tcp --port 18431 --source proc --timeout 1s || true) KiB"
echo "== peak RSS, http wait, 1s of polling: $(rss "$bin" -q http --url localhost:18431/ --timeout 1s || true) KiB"
echo "== peak RSS, slim build: tcp (netlink) $(rss "$slim" -q tcp --port 18431 --timeout 1s || true) KiB, http $(rss "$slim" -q http --url localhost:18431/ --timeout 1s || true) KiB"
kill $listener 2>/dev/null || true

echo "== one tcp check in-process (criterion; [low estimate, median, high estimate])"
cargo bench --quiet --bench check -- --noplot 2>/dev/null | grep -A1 '^tcp_check' | grep -v '^--' | paste - - | awk '{print "   ", $1, $3, $4, $5, $6, $7, $8}'
cargo bench --quiet --bench events 2>/dev/null
