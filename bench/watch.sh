#!/usr/bin/env bash
# watch.sh: time from a file write on the host to the new content being
# served from inside the container (busybox httpd, polled over a published
# port on 127.0.0.1 every millisecond), median and p90 over N edits.
#
#   berth: BenchmarkWatchLatency in supervisor/watch (a real daemon on a
#          temporary root, develop.watch sync with the default batching).
#   docker compose watch: the same stack and edit loop, when `docker compose`
#          and a Docker daemon answer (../shared/bench/peers-setup.sh sets
#          them up) and the image bench/busybox:latest exists.
#
#   usage: bench/watch.sh [N]      (N edits, default 100; run as root)
set -euo pipefail
N=${1:-100}
cd "$(dirname "$0")/.."

echo "== berth watch (sync), $N edits"
BERTH_PRIVILEGED=1 go test -count=1 -run '^$' -bench '^BenchmarkWatchLatency$' \
	-benchtime="${N}x" ./supervisor/watch/ | grep -E '^Benchmark|ms-median' || true

if ! docker compose version >/dev/null 2>&1 || ! timeout 5 docker info >/dev/null 2>&1; then
	echo "== docker compose watch: skipped (no docker compose or no Docker daemon; see ../shared/bench/peers-setup.sh)"
	exit 0
fi
if ! docker image inspect bench/busybox:latest >/dev/null 2>&1; then
	echo "== docker compose watch: skipped (no bench/busybox:latest image; peers-setup.sh imports it)"
	exit 0
fi

echo "== docker compose watch (sync), $N edits"
work=$(mktemp -d)
proj=berthwatchbench$$
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
	[ -n "${wpid:-}" ] && kill "$wpid" 2>/dev/null || true
	docker compose -p "$proj" -f "$work/compose.yaml" down -t 1 >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/site"
echo start >"$work/site/index.html"
cat >"$work/compose.yaml" <<YAML
services:
  web:
    # Compose 2.29 watches only services with a build: section.
    build:
      context: .
      dockerfile_inline: "FROM bench/busybox:latest\n"
    command: ["sh", "-c", "mkdir -p /srv && exec httpd -f -p 8080 -h /srv"]
    ports: ["127.0.0.1:$port:8080"]
    develop:
      watch:
        - path: ./site
          target: /srv
          action: sync
YAML
docker compose -p "$proj" -f "$work/compose.yaml" up -d --wait >/dev/null
docker compose -p "$proj" -f "$work/compose.yaml" watch --no-up >"$work/watch.log" 2>&1 &
wpid=$!
python3 - "$work/site/index.html" "$port" "$N" <<'PY'
import sys, time, urllib.request, statistics
path, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
url = f"http://127.0.0.1:{port}/index.html"
def fetch():
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except Exception:
        return ""
def edit(want, limit=30):
    start = time.monotonic()
    with open(path, "w") as f:
        f.write(want)
    while fetch() != want:
        if time.monotonic() - start > limit:
            sys.exit(f"edit not served after {limit} s")
        time.sleep(0.001)
    return time.monotonic() - start
edit("warm-up", 60)  # compose watch needs a moment to start
lat = sorted(edit(f"edit {i}") for i in range(n))
print(f"compose-watch {n} edits: {statistics.median(lat)*1000:.2f} ms-median {lat[int(n*0.9)]*1000:.2f} ms-p90")
PY
