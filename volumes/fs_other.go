//go:build !linux

package volumes

import (
	"context"
	"fmt"
)

var errPlatform = fmt.Errorf("%w: volumes need Linux", ErrNotSupported)

func renameNoReplace(string, string) error             { return errPlatform }
func flockExclusive(string) (func(), error)            { return nil, errPlatform }
func makeMountpoints(string, []mountpoint) error       { return errPlatform }
func resolveSubpath(string, string) (string, error)    { return "", errPlatform }
func mountVolume(string, driverOpts) error             { return errPlatform }
func unmountVolume(string) error                       { return nil }
func isMountpoint(string) (bool, error)                { return false, nil }
func dirEmpty(string) (bool, error)                    { return false, errPlatform }
func wipeDir(string) error                             { return errPlatform }
func syncFS(string) error                              { return errPlatform }
func openCopySource(string, string) (int, bool, error) { return -1, false, errPlatform }
func copyIn(context.Context, int, string) error        { return errPlatform }
func closeFD(int)                                      {}
