//go:build !linux

package api

import "errors"

// EnsureDaemon is supported on Linux only.
func EnsureDaemon(root, berthBinary string) (*Client, error) {
	c, err := Dial(root)
	if err == nil {
		return c, nil
	}
	return nil, errors.Join(err, errors.New("starting the berth daemon is supported on Linux only"))
}
