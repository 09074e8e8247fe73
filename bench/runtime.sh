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
	make -s -C "$(dirname "$0")/.." build BIN="$BERTH"
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

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }

# one_true RT ROOT BUNDLE ID / one_sleep ...: one timed lifecycle, prints ns
one_true() {
	local rt=$1 root=$2 b=$3 id=$4 t0
	cp "$b/true.json" "$b/config.json"
	t0=$(now)
	$rt --root "$root" run --bundle "$b" "$id" >/dev/null 2>&1 </dev/null || return 1
	echo $(( $(now) - t0 ))
}
one_sleep() {
	local rt=$1 root=$2 b=$3 id=$4 t0
	cp "$b/sleep.json" "$b/config.json"
	t0=$(now)
	if ! { $rt --root "$root" create --bundle "$b" "$id" >/dev/null 2>&1 </dev/null &&
		$rt --root "$root" start "$id" && $rt --root "$root" delete --force "$id"; }; then
		$rt --root "$root" delete --force "$id" >/dev/null 2>&1 || true
		return 1
	fi
	echo $(( $(now) - t0 ))
}

# The runtimes take turns within each iteration, so that load from
# elsewhere on the machine hits them alike.
names=(berth)
cmds=("$BERTH runtime")
for peer in crun runc; do
	if command -v $peer >/dev/null; then
		names+=($peer)
		cmds+=($peer)
	fi
done
declare -A res
for net in off on; do
	b=$WORK/b-$net
	cp "$b/config.json" "$b/true.json"
	for kind in true sleep; do
		for i in $(seq "$N"); do
			for k in "${!names[@]}"; do
				n=${names[$k]}
				[ "${res[$n,$kind,$net]:-}" = FAIL ] && continue
				root=$WORK/root-$n
				mkdir -p "$root"
				if t=$(one_$kind "${cmds[$k]}" "$root" "$b" "b$kind-$net-$$-$i"); then
					res[$n,$kind,$net]="${res[$n,$kind,$net]:-} $t"
				else
					echo "$n $kind netns=$net failed" >&2
					res[$n,$kind,$net]=FAIL
				fi
			done
		done
	done
done

echo "median of $N runs, ms (load before: $LOAD; after: $(cut -d' ' -f1-3 /proc/loadavg))"
echo -e "runtime\ttrue/netns-off\tsleep-kill/netns-off\ttrue/netns-on\tsleep-kill/netns-on"
for n in "${names[@]}"; do
	row=$n
	for net in off on; do
		for kind in true sleep; do
			v=${res[$n,$kind,$net]:-FAIL}
			if [ "$v" = FAIL ]; then row="$row\tFAIL"; else row="$row\t$(printf '%s\n' $v | median)"; fi
		done
	done
	echo -e "$row"
done
