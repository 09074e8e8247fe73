#!/bin/bash
# Run privileged Go test binaries on a pure cgroup v2 host: a Debian cloud
# kernel booted under qemu (software emulation, no KVM) with a busybox
# initramfs that mounts only cgroup2 at /sys/fs/cgroup.
#
# usage: .ci/v2guest/run.sh [-t SECONDS] PKG[:RUN_REGEXP][@VAR=VALUE] ...
#   e.g. .ci/v2guest/run.sh ./supervisor/runtime/cgroups:'.*' \
#            ./supervisor/runtime:'TestPid1|TestCgroup' \
#            ./supervisor/runtime@BERTH_TEST_CINIT=1
#
# Each package is built with `go test -c` as a static binary and run in the
# guest as root with BERTH_PRIVILEGED=1 CI=true -test.v -test.run RUN_REGEXP,
# and VAR=VALUE in its environment when given.
# The guest prints one marker line per binary with its exit code; this
# script exits non-zero when any binary failed, or the guest did not get
# to the end (crash, timeout). Keep the RUN_REGEXPs small: emulation is
# about 10-30x slower than the host.
#
# Environment:
#   V2GUEST_KERNEL   kernel image (default /boot/vmlinuz-6.1.0-57-cloud-amd64)
#   V2GUEST_KVER     its module directory name (default from the image name)
#   V2GUEST_MEM      guest memory (default 2G)
#   V2GUEST_SMP      guest CPUs (default 2)
#   V2GUEST_KEEP=1   keep the work directory (initramfs, log) for debugging
#   V2GUEST_TEST_TIMEOUT  -test.timeout of each test binary, in seconds
#                    (default a quarter of -t): a binary that hangs panics
#                    with every goroutine's stack, and the others still run
#
# Needs (Debian): qemu-system-x86, linux-image-cloud-amd64, busybox-static,
# cpio, a Go toolchain; gcc and static libraries for packages that use cgo.
set -euo pipefail

timeout_s=1500
while getopts "t:" opt; do
	case $opt in
	t) timeout_s=$OPTARG ;;
	*) echo "usage: $0 [-t SECONDS] PKG[:RUN_REGEXP] ..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
	echo "usage: $0 [-t SECONDS] PKG[:RUN_REGEXP] ..." >&2
	exit 2
fi
test_timeout_s=${V2GUEST_TEST_TIMEOUT:-$((timeout_s / 4))}

repo=$(cd "$(dirname "$0")/../.." && pwd)
kernel=${V2GUEST_KERNEL:-/boot/vmlinuz-6.1.0-57-cloud-amd64}
kver=${V2GUEST_KVER:-$(basename "$kernel" | sed 's/^vmlinuz-//')}
moddir=/lib/modules/$kver
busybox=/bin/busybox
start=$(date +%s)

for f in "$kernel" "$moddir/modules.dep" "$busybox"; do
	[ -e "$f" ] || { echo "v2guest: missing $f" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "v2guest: qemu-system-x86_64 not installed" >&2; exit 2; }
command -v cpio >/dev/null || { echo "v2guest: cpio not installed" >&2; exit 2; }

work=$(mktemp -d /tmp/berth-v2guest.XXXXXX)
cleanup() {
	if [ "${V2GUEST_KEEP:-}" = 1 ]; then
		echo "v2guest: work directory kept at $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,tests,lib/modules,usr/bin,usr/sbin,usr/local/bin}

# gobuild OUT ARGS...: a static binary. Packages that need cgo (outside
# the standard library) are linked statically by the external linker;
# the rest are built with CGO_ENABLED=0.
gobuild() {
	local out=$1 pkg=$2
	shift 2
	local cgo
	cgo=$(cd "$repo" && go list -deps -test -f '{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}' "$pkg" | head -1)
	if [ -n "$cgo" ]; then
		(cd "$repo" && CGO_ENABLED=1 go "$@" -ldflags '-extldflags=-static' -o "$out" "$pkg")
	else
		(cd "$repo" && CGO_ENABLED=0 go "$@" -o "$out" "$pkg")
	fi
}

# Test binaries, and the list the guest's init walks: NAME<TAB>REGEXP.
: >"$root/tests/list"
names=()
for spec in "$@"; do
	envs=
	case $spec in *@*) envs=${spec#*@} spec=${spec%%@*} ;; esac
	pkg=${spec%%:*}
	pat=.
	[ "$pkg" != "$spec" ] && pat=${spec#*:}
	[ -n "$pat" ] || pat=.
	name=$(echo "$pkg" | sed 's|^\./||; s|[^A-Za-z0-9_.-]|_|g')
	[ -n "$name" ] || name=root
	while [ -e "$root/tests/$name.test" ]; do name=$name.2; done # same package twice
	echo "v2guest: building $pkg (run $pat)"
	gobuild "$root/tests/$name.test" "$pkg" test -c
	if [ ! -e "$root/tests/$name.test" ]; then
		echo "v2guest: $pkg has no tests" >&2
		exit 2
	fi
	dir=$(cd "$repo" && go list -f '{{.Dir}}' "$pkg")
	rel=${dir#"$repo"}
	printf '%s\t/src%s\t%s\t%s\n' "$name" "${rel:-/}" "$pat" "$envs" >>"$root/tests/list"
	names+=("$name")
done

# The source tree (without .git) at /src: each test binary runs in its
# package's directory there, as under `go test`, so testdata/ and
# examples/ are found by relative paths.
mkdir -p "$root/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r tar -cf - --ignore-failed-read 2>/dev/null) |
	tar -xf - -C "$root/src"

# The berth binary, when the tree has one, at /usr/local/bin/berth.
# It embeds its container init, as `make build` does (Makefile: init-bin).
if [ -d "$repo/cmd/berth" ]; then
	echo "v2guest: building ./cmd/berth"
	make -s -C "$repo" init-bin
	gobuild "$root/usr/local/bin/berth" ./cmd/berth build -tags berth_init
	# The inits alone too, for the runtime's TestSmallInit, TestSmallExec
	# and the C init's tests (no Go nor C compiler here).
	mkdir -p "$root/usr/local/libexec"
	cp "$repo/supervisor/runtime/initbin/berth-init" "$root/usr/local/libexec/berth-init"
	cp "$repo/supervisor/runtime/initbin/berth-exec" "$root/usr/local/libexec/berth-exec"
	cp "$repo/supervisor/runtime/initbin/berth-cinit" "$root/usr/local/libexec/berth-cinit"
fi

# busybox at the same path as on the host, plus /bin/sh for init.
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Kernel modules for overlay, veth, bridge and nf_tables (NAT included),
# with their dependencies from modules.dep, loaded in dependency order.
# Compressed modules are unpacked here: busybox insmod reads plain ELF.
want="overlay veth bridge br_netfilter nf_tables nft_chain_nat nft_nat nft_masq nft_redir nft_ct
nft_reject_inet nft_fib_inet nft_fib_ipv4 nft_fib_ipv6 nf_conntrack nf_nat nfnetlink dummy tun"
declare -A seen=()
order=()
modpath() { # module name -> path relative to $moddir ('' if not built)
	awk -F: -v n="$1" '{ b = $1; sub(/.*\//, "", b); sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", b); gsub(/-/, "_", b); if (b == n) { print $1; exit } }' "$moddir/modules.dep"
}
adddeps() {
	local rel=$1
	[ -n "${seen[$rel]:-}" ] && return
	seen[$rel]=1
	local deps
	deps=$(awk -F: -v p="$rel" '$1 == p { print $2; exit }' "$moddir/modules.dep")
	for d in $deps; do adddeps "$d"; done
	order+=("$rel")
}
for m in $want; do
	rel=$(modpath "$m")
	if [ -z "$rel" ]; then
		# built into the kernel (modules.builtin) or not available
		continue
	fi
	adddeps "$rel"
done
: >"$root/lib/modules/order"
for rel in "${order[@]}"; do
	base=$(basename "$rel")
	case $base in
	*.ko.xz) xz -dc "$moddir/$rel" >"$root/lib/modules/${base%.xz}"; base=${base%.xz} ;;
	*.ko.zst) zstd -qdc "$moddir/$rel" >"$root/lib/modules/${base%.zst}"; base=${base%.zst} ;;
	*.ko.gz) gzip -dc "$moddir/$rel" >"$root/lib/modules/${base%.gz}"; base=${base%.gz} ;;
	*) cp "$moddir/$rel" "$root/lib/modules/$base" ;;
	esac
	echo "$base" >>"$root/lib/modules/order"
done

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"

# The marker carries a per-run nonce so no test output can fake it.
nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
marker="BERTH-V2GUEST-$nonce"
# Stage 1: the initramfs root cannot be pivot_root'ed away from (the
# runtime's pivot_root gets EINVAL there), so copy the tree onto a tmpfs
# and switch_root to it; stage 2 (/init2) does the real work.
cat >"$root/init" <<'INIT'
#!/bin/sh
/bin/busybox mkdir -p /newroot
/bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot
for f in /*; do
	[ "$f" = /newroot ] || /bin/busybox cp -a "$f" /newroot/
done
exec /bin/busybox switch_root /newroot /init2
INIT
chmod 755 "$root/init"
cat >"$root/init2" <<INIT
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin HOME=/root TMPDIR=/tmp
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
# Pure cgroup v2: only the unified hierarchy, with every controller the
# kernel offers enabled for the children of the root.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for c in \$(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+\$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "v2guest: cannot enable \$c"
done
echo "v2guest: cgroup2 controllers: \$(cat /sys/fs/cgroup/cgroup.subtree_control)"
while read -r m; do
	insmod "/lib/modules/\$m" || echo "v2guest: insmod \$m failed"
done </lib/modules/order
echo "v2guest: modules: \$(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' ')"
ip link set lo up
hostname v2guest
[ -x /usr/local/bin/berth ] && export BERTH_BINARY=/usr/local/bin/berth
[ -x /usr/local/libexec/berth-init ] && export BERTH_SMALL_INIT=/usr/local/libexec/berth-init
[ -x /usr/local/libexec/berth-exec ] && export BERTH_SMALL_EXEC=/usr/local/libexec/berth-exec
[ -x /usr/local/libexec/berth-cinit ] && export BERTH_CINIT=/usr/local/libexec/berth-cinit
while IFS="	" read -r name dir pat envs; do
	echo "v2guest: running \$name -test.run '\$pat' in \$dir \$envs"
	cd "\$dir"
	env \$envs BERTH_PRIVILEGED=1 CI=true "/tests/\$name.test" -test.v -test.run "\$pat" -test.timeout ${test_timeout_s}s </dev/null 2>&1
	rc=\$?
	cd /
	echo "$marker RESULT \$name \$rc"
done </tests/list
echo "$marker DONE"
sync
poweroff -f
INIT
chmod 755 "$root/init2"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$work/initrd.cpio"
echo "v2guest: initramfs $(du -h "$work/initrd.cpio" | cut -f1), built in $(($(date +%s) - start))s; booting $kver (no KVM)"

boot=$(date +%s)
set +e
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-nographic -no-reboot -nic none \
	-cpu max -smp "${V2GUEST_SMP:-2}" -m "${V2GUEST_MEM:-2G}" \
	-kernel "$kernel" -initrd "$work/initrd.cpio" \
	-append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3" \
	</dev/null 2>&1 | tee "$work/console.log" | sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g; s/\r$//'
qrc=${PIPESTATUS[0]}
set -e
end=$(date +%s)

fail=0
for name in "${names[@]}"; do
	line=$(tr -d '\r' <"$work/console.log" | grep -a "^$marker RESULT $name " | tail -1 || true)
	if [ -z "$line" ]; then
		echo "v2guest: FAIL $name: no result (guest crashed or timed out)"
		fail=1
		continue
	fi
	rc=${line##* }
	if [ "$rc" = 0 ]; then
		echo "v2guest: ok   $name"
	else
		echo "v2guest: FAIL $name: exit $rc"
		fail=1
	fi
done
if ! tr -d '\r' <"$work/console.log" | grep -aq "^$marker DONE"; then
	echo "v2guest: FAIL: guest did not finish (qemu exit $qrc; timeout ${timeout_s}s)"
	fail=1
fi
echo "v2guest: guest ran $((end - boot))s, total $((end - start))s"
exit $fail
