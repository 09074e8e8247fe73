#!/bin/sh
# make-busybox.sh: make the image the examples use, busybox:latest
# (stored as docker.io/library/busybox:latest), with no registry.
#
# It builds a tiny rootfs from Debian's busybox-static (/bin/busybox plus one
# symlink per applet, /etc/passwd and /etc/group with root and nobody, /tmp)
# and runs `berth image import`.
#
#   usage: examples/images/make-busybox.sh [BERTH] [REF]
#     BERTH  berth binary (default: berth on PATH); --root/BERTH_ROOT apply
#     REF    image name (default busybox:latest)
#
# Needs busybox-static: apt-get install -y busybox-static
set -eu

BERTH=${1:-berth}
REF=${2:-busybox:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}

if [ ! -x "$BUSYBOX" ] || ! "$BUSYBOX" --list >/dev/null 2>&1; then
	echo "make-busybox.sh: $BUSYBOX missing: apt-get install -y busybox-static" >&2
	exit 1
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	echo "make-busybox.sh: $BUSYBOX is dynamically linked; install busybox-static" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
	"$root/etc" "$root/tmp" "$root/root" "$root/proc" "$root/sys" "$root/dev" \
	"$root/var" "$root/home"
cp "$BUSYBOX" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One symlink per applet, where busybox --list --full would put it; the short
# list puts all of them in /bin.
for applet in $("$BUSYBOX" --list); do
	[ "$applet" = busybox ] && continue
	ln -sf busybox "$root/bin/$applet"
done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cat >"$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat >"$root/etc/group" <<'GR'
root:x:0:
nobody:x:65534:
GR
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

# Owned by root in the image whoever runs this; busybox's own tar (the
# cgroup v2 test guest has no GNU tar) has no --owner, and as root the
# files are root's already.
if tar --version 2>/dev/null | grep -q GNU; then
	tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$work/rootfs.tar" .
else
	tar -C "$root" -cf "$work/rootfs.tar" .
fi
"$BERTH" image import \
	--change 'CMD ["sh"]' \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	"$work/rootfs.tar" "$REF"
