//go:build !linux

package watch

import "errors"

// ResolveUser is only supported on Linux.
func ResolveUser(rootfs, user string) (uid, gid int, err error) {
	return 0, 0, errors.New("watch: not supported on this OS")
}
