#!/usr/bin/env bash
# bench/runtime.sh -- container lifecycle latency of berth's runtime CLI, and of
# runc and crun where installed, on the same busybox bundle in the same run.
#
# Cases: `true` (run: create+start+exit+delete) and `sleep` then kill
# (create, start, delete --force), each with the network namespace off and
# on. Prints the median over N runs (default 50) in milliseconds.
#
# usage: sudo bench/runtime.sh [path/to/berth]     (N=50 by default)
set -euo pipefail
N=${N:-50}
BERTH=${1:-}
WORK=$(mktemp -d /tmp/berth-bench-rt.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$BERTH" ]; then
	BERTH=$WORK/berth
	(cd "$(dirname "$0")/.." && CGO_ENABLED=1 go build -o "$BERTH" ./cmd/berth)
fi

# busybox rootfs + two bundles (netns off/on) sharing it
mkdir -p "$WORK/rootfs"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$WORK/rootfs/bin/"
for a in sh true sleep; do ln -s busybox "$WORK/rootfs/bin/$a"; done
(cd "$WORK" && "$BERTH" runtime spec --bundle "$WORK")
for net in off on; do
	mkdir -p "$WORK/b-$net"
	ln -s ../rootfs "$WORK/b-$net/rootfs"
	filter='.ociVersion="1.0.2" | .process.terminal=false | .process.args=["/bin/true"] | .root.path="'"$WORK"'/rootfs"'
	if [ $net = off ]; then filter="$filter"' | .linux.namespaces |= map(select(.type != "network"))'; fi
	# runc/crun need a cgroupsPath of their own per container; leave it
	# empty so each runtime picks its default.
	jq "$filter" "$WORK/config.json" > "$WORK/b-$net/config.json"
	jq '.process.args=["/bin/sleep","1000"]' "$WORK/b-$net/config.json" > "$WORK/b-$net/sleep.json"
done

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }

# bench RUNTIME-NAME CMD...: prints a row
bench() {
	local name=$1; shift
	local rt=("$@")
	local root=$WORK/root-$name
	mkdir -p "$root"
	local row="$name"
	for net in off on; do
		local b=$WORK/b-$net
		cp "$b/config.json" "$b/true.json"
		# true: run = create+start+wait+delete
		local ts=()
		for i in $(seq "$N"); do
			cp "$b/true.json" "$b/config.json"
			local t0; t0=$(now)
			"${rt[@]}" --root "$root" run --bundle "$b" "bt-$$-$i" >/dev/null 2>&1 </dev/null || { echo "$name run failed" >&2; row="$row\tFAIL"; break; }
			ts+=($(( $(now) - t0 )))
		done
		[ ${#ts[@]} -gt 0 ] && row="$row\t$(printf '%s\n' "${ts[@]}" | median)"
		# sleep then kill: create, start, delete --force
		ts=()
		for i in $(seq "$N"); do
			cp "$b/sleep.json" "$b/config.json"
			local t0; t0=$(now)
			if ! { "${rt[@]}" --root "$root" create --bundle "$b" "bs-$$-$i" >/dev/null 2>&1 </dev/null &&
				"${rt[@]}" --root "$root" start "bs-$$-$i" &&
				"${rt[@]}" --root "$root" delete --force "bs-$$-$i"; }; then
				echo "$name sleep/kill failed" >&2
				"${rt[@]}" --root "$root" delete --force "bs-$$-$i" >/dev/null 2>&1 || true
				row="$row\tFAIL"; break
			fi
			ts+=($(( $(now) - t0 )))
		done
		[ ${#ts[@]} -gt 0 ] && row="$row\t$(printf '%s\n' "${ts[@]}" | median)"
		cp "$b/true.json" "$b/config.json"
	done
	echo -e "$row"
}

echo "median of $N runs, ms (load: $(cut -d' ' -f1-3 /proc/loadavg))"
echo -e "runtime\ttrue/netns-off\tsleep-kill/netns-off\ttrue/netns-on\tsleep-kill/netns-on"
bench berth "$BERTH" runtime
command -v crun >/dev/null && bench crun crun
command -v runc >/dev/null && bench runc runc
exit 0
