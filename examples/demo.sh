#!/usr/bin/env bash
# berth's demo: makes the offline busybox image, brings up the stack in
# examples/demo (a web server, a health-gated API stand-in and a client
# that fetches from both by service name), shows it running, and takes it
# down again.   Usage: examples/demo.sh [path/to/berth]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
berth="${1:-berth}"
case "$berth" in /*) ;; */*) berth="$(pwd)/$berth" ;; esac
export BERTH_ROOT="${BERTH_ROOT:-/var/lib/berth-demo}"
export WEB_PORT="${WEB_PORT:-8080}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "image: busybox:latest from Debian's busybox-static (no registry)"
"$here/images/make-busybox.sh" "$berth" >/dev/null
"$berth" image ls

cd "$here/demo"
step "berth config --services"
"$berth" config --services

step "berth up -d --wait"
"$berth" up -d --wait
trap '"$berth" down >/dev/null 2>&1 || true' EXIT

step "berth ps"
"$berth" ps -a

step "the client fetched web and api by service name (berth logs client)"
"$berth" wait client >/dev/null || true
"$berth" logs client

step "the published port, fetched from the host: http://$("$berth" port web 8080)/"
/bin/busybox wget -q -O - "http://127.0.0.1:$WEB_PORT/"

step "berth exec web: the service's command is pid 1 of its container"
"$berth" exec -T web ps -o pid,args

step "berth down"
"$berth" down
trap - EXIT
"$berth" daemon stop >/dev/null 2>&1 || true
