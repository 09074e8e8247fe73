#!/usr/bin/env bash
# up-down.sh: how long `up -d` and `down` take for stacks of 1, 10 and 50
# services and for a 5-link health-gated chain, and how much memory the
# supervisor spends per running container. Where Docker Compose (`docker
# compose` with a working dockerd) or podman-compose is installed
# (/work/shared/bench/peers-setup.sh installs them), the same stacks run
# through them in the same run, on the same busybox rootfs (docker/podman
# import of the tarball examples/images/make-busybox.sh builds).
#
#   usage: bench/up-down.sh [BERTH]
#     BERTH    berth binary (default: built from this checkout)
#   environment:
#     RUNS     runs per stack and tool (default 5); the median is printed
#     SIZES    service counts (default "1 10 50")
#     MEM_N    containers for the memory figure (default 50)
#     PEERS    "auto" (default: those installed), or "none"
#     SETTLE   1 (default): before each tool's runs of a stack, sync and
#              drop the kernel's caches, so that no tool pays for what the
#              one before left behind (see settle below); 0: do not
#
# Run as root. Each run uses a fresh berth root under a temp directory and
# removes it at the end. Prints a table of medians (seconds).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
RUNS=${RUNS:-5}
SIZES=${SIZES:-1 10 50}
MEM_N=${MEM_N:-50}
PEERS=${PEERS:-auto}

if [ "$(id -u)" != 0 ]; then
	echo "up-down.sh: run as root" >&2
	exit 1
fi

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
export BERTH_ROOT=$work/root
berth=${1:-}
if [ -z "$berth" ]; then
	berth=$work/berth
	make -s -C "$repo" build BIN="$berth"
fi
case "$berth" in /*) ;; *) berth=$(pwd)/$berth ;; esac

cleanup() {
	set +e
	for d in "$work"/stacks/*/; do
		[ -f "$d/compose.yaml" ] || continue
		(cd "$d" && "$berth" down -t 1 >/dev/null 2>&1)
		if [ -n "${have_docker:-}" ]; then (cd "$d" && docker compose down -t 1 >/dev/null 2>&1); fi
		if [ -n "${have_podman:-}" ]; then (cd "$d" && podman-compose down -t 1 >/dev/null 2>&1); fi
	done
	"$berth" daemon stop >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

log() { echo "[up-down] $*" >&2; }

# The busybox image: make-busybox.sh imports it into berth; a wrapper in
# place of the berth binary keeps a copy of the rootfs tarball for the
# peers.
cat >"$work/import-wrapper" <<EOF
#!/bin/sh
for a in "\$@"; do case "\$a" in *rootfs.tar) cp "\$a" "$work/rootfs.tar" ;; esac; done
exec "$berth" "\$@"
EOF
chmod +x "$work/import-wrapper"
"$repo/examples/images/make-busybox.sh" "$work/import-wrapper" busybox:latest >/dev/null

have_docker= have_podman=
if [ "$PEERS" = auto ]; then
	if docker compose version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		have_docker=1
		docker import --change 'CMD ["sh"]' "$work/rootfs.tar" berth-bench/busybox:latest >/dev/null
	fi
	if command -v podman-compose >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
		have_podman=1
		podman import --change 'CMD ["sh"]' "$work/rootfs.tar" berth-bench/busybox:latest >/dev/null
	fi
fi
[ -n "$have_docker" ] || log "docker compose (with a running dockerd) not found: berth only"
[ -n "$have_podman" ] || log "podman-compose not found: berth only"

# Stack files. IMAGE is busybox:latest for berth and the imported
# berth-bench/busybox:latest for the peers. Services end at once on
# SIGTERM (a shell as pid 1 ignores signals it has no trap for).
mkdir -p "$work/stacks"
gen_services() { # NAME N
	local dir=$work/stacks/$1 i
	mkdir -p "$dir"
	{
		echo "name: $1"
		echo "services:"
		for i in $(seq "$2"); do
			cat <<EOF
  s$i:
    image: \${IMAGE:-busybox:latest}
    pull_policy: never
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
EOF
		done
	} >"$dir/compose.yaml"
}
# The chain probes every 200 ms from the start, for every tool alike
# (start_interval would need Docker Engine 25; Debian 12's is older).
gen_chain() {
	local dir=$work/stacks/chain5 i
	mkdir -p "$dir"
	{
		echo "name: chain5"
		echo "services:"
		for i in 1 2 3 4 5; do
			cat <<EOF
  link$i:
    image: \${IMAGE:-busybox:latest}
    pull_policy: never
    command: ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/ready; sleep 100000 & wait"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 3
EOF
			if [ "$i" -gt 1 ]; then
				echo "    depends_on: {link$((i - 1)): {condition: service_healthy}}"
			fi
		done
	} >"$dir/compose.yaml"
}
stacks=
for n in $SIZES; do
	gen_services "svc$n" "$n"
	stacks="$stacks svc$n"
done
gen_chain
stacks="$stacks chain5"

median() { sort -g | awk '{v[NR]=$1} END{if(NR==0){print "NA";exit} if(NR%2) m=v[(NR+1)/2]; else m=(v[NR/2]+v[NR/2+1])/2; printf "%.3f\n", m}'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f\n", b-a}'; }

# run_tool TOOL STACK: RUNS timed up -d / down pairs; prints "UP DOWN".
run_tool() {
	local tool=$1 stack=$2 dir=$work/stacks/$2 i t0 t1 t2 ups= downs=
	local up down image=busybox:latest
	case $tool in
	berth)
		up=("$berth" up -d)
		down=("$berth" down -t 10)
		;;
	docker)
		up=(docker compose up -d)
		down=(docker compose down -t 10)
		image=berth-bench/busybox:latest
		;;
	podman)
		up=(podman-compose up -d)
		down=(podman-compose down -t 10)
		image=berth-bench/busybox:latest
		;;
	esac
	for i in $(seq "$RUNS"); do
		t0=$EPOCHREALTIME
		if ! (cd "$dir" && IMAGE=$image "${up[@]}" >"$work/out.log" 2>&1); then
			log "$tool up -d $stack failed:"
			tail -5 "$work/out.log" >&2
		fi
		t1=$EPOCHREALTIME
		if ! (cd "$dir" && IMAGE=$image "${down[@]}" >"$work/out.log" 2>&1); then
			log "$tool down $stack failed:"
			tail -5 "$work/out.log" >&2
		fi
		t2=$EPOCHREALTIME
		ups="$ups $(elapsed "$t0" "$t1")"
		downs="$downs $(elapsed "$t1" "$t2")"
	done
	echo "$(printf '%s\n' $ups | median) $(printf '%s\n' $downs | median)"
}

# The berth daemon starts on demand; start it before timing.
"$berth" ls >/dev/null

tools="berth"
[ -n "$have_docker" ] && tools="$tools docker"
[ -n "$have_podman" ] && tools="$tools podman"

declare -A up_med down_med
# settle gives every tool the same start: the memory cgroups of removed
# containers linger in the kernel ("dying") while page cache or dentries
# charged to them stay cached (on the project's CI machine, 730 of them
# after a few thousand containers), and they slow down page faults and
# cgroup work for whatever runs next: berth's up of 50 services took
# 0.35-0.38 s with them freed and 0.40-0.47 s with them there. Dropping
# the caches frees them (and cools the page cache for every tool alike;
# the median of RUNS absorbs the first, cold run).
SETTLE=${SETTLE:-1}
settle() {
	[ "$SETTLE" = 1 ] || return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

for stack in $stacks; do
	for tool in $tools; do
		settle
		log "$tool: $stack x $RUNS"
		read -r u d < <(run_tool "$tool" "$stack")
		up_med[$stack.$tool]=$u
		down_med[$stack.$tool]=$d
	done
done

# Memory per container: the supervisor's resident memory before and
# after MEM_N containers run (berth: the daemon; docker: dockerd,
# containerd and the shims; podman: the conmon processes).
rss_kb() {
	local p s=0 v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null) || v=0
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
supervisor_pids() {
	case $1 in
	berth) cat "$BERTH_ROOT/berth.pid" ;;
	docker) pgrep -x 'dockerd|containerd|containerd-shim|containerd-shim-runc-v2' || true ;;
	podman) pgrep -x conmon || true ;;
	esac
}
gen_services mem "$MEM_N"
declare -A mem_per mem_abs
for tool in $tools; do
	image=busybox:latest
	case $tool in
	berth) up=("$berth" up -d) down=("$berth" down -t 10) ;;
	docker) up=(docker compose up -d) down=(docker compose down -t 10) image=berth-bench/busybox:latest ;;
	podman) up=(podman-compose up -d) down=(podman-compose down -t 10) image=berth-bench/busybox:latest ;;
	esac
	if [ "$tool" = berth ]; then
		# A fresh daemon with no container. The daemon returns the heap a
		# project operation grew to the OS a second after it (the samples
		# are taken 2 s after), so the difference is what the running
		# containers keep. BenchmarkEngineMemoryPerContainer measures the
		# same in-process, from the Go heap.
		"$berth" daemon stop >/dev/null 2>&1 || true
		"$berth" ls >/dev/null
	else
		# A first up/down warms the peer up (its daemons running, caches
		# filled), so the figure is what running containers cost.
		(cd "$work/stacks/mem" && IMAGE=$image "${up[@]}" >/dev/null 2>&1 && IMAGE=$image "${down[@]}" >/dev/null 2>&1) || true
	fi
	sleep 2
	before=$(rss_kb $(supervisor_pids "$tool"))
	(cd "$work/stacks/mem" && IMAGE=$image "${up[@]}" >"$work/out.log" 2>&1) || { log "$tool: up of $MEM_N failed"; tail -5 "$work/out.log" >&2; }
	sleep 2 # let health loops and log watchers settle
	after=$(rss_kb $(supervisor_pids "$tool"))
	(cd "$work/stacks/mem" && IMAGE=$image "${down[@]}" >"$work/out.log" 2>&1) || true
	mem_per[$tool]=$(awk -v a="$before" -v b="$after" -v n="$MEM_N" 'BEGIN{printf "%.3f", (b-a)/n/1024}')
	mem_abs[$tool]="$before -> $after"
done

name_of() { case $1 in berth) echo berth ;; docker) echo "docker compose" ;; podman) echo podman-compose ;; esac; }
echo
echo "up -d / down, median of $RUNS runs (seconds)"
printf '%-8s %-16s %10s %10s\n' STACK TOOL "UP -D" DOWN
for stack in $stacks; do
	for tool in $tools; do
		printf '%-8s %-16s %10s %10s\n' "$stack" "$(name_of "$tool")" "${up_med[$stack.$tool]}" "${down_med[$stack.$tool]}"
	done
done
echo
echo "supervisor memory per running container ($MEM_N containers)"
printf '%-16s %14s   %s\n' TOOL "MiB/CONTAINER" "RSS KiB before -> after"
for tool in $tools; do
	printf '%-16s %14s   %s\n' "$(name_of "$tool")" "${mem_per[$tool]}" "${mem_abs[$tool]}"
done
