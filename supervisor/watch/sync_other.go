//go:build !linux

package watch

import "errors"

// Sync is only supported on Linux.
func (t *Target) Sync(hostRoot, target string, paths []string, m *Matcher, full bool) (SyncResult, error) {
	return SyncResult{}, errors.New("watch: sync is only supported on Linux")
}
