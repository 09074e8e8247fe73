#!/usr/bin/env bash
# Runs berth's demo: validates the example stack and shows the model berth
# builds from it. Usage: examples/demo.sh [path/to/berth]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
berth="${1:-berth}"
case "$berth" in /*) ;; */*) berth="$(pwd)/$berth" ;; esac
export BERTH_ROOT="${BERTH_ROOT:-/var/lib/berth-demo}"

cd "$here/demo"
echo "== berth config --services"
"$berth" config --services
echo "== berth config (normalized)"
"$berth" config
echo "== berth config --hash '*'"
"$berth" config --hash '*'
