//go:build !linux

package watch

import "errors"

// SyncResult counts what one sync did.
type SyncResult struct {
	Written int
	Deleted int
	Dirs    int
}

// Sync is only supported on Linux.
func (t *Target) Sync(hostRoot, target string, paths []string, m *Matcher, full bool) (SyncResult, error) {
	return SyncResult{}, errors.New("watch: sync is only supported on Linux")
}
