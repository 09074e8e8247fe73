//go:build !linux

package supervisor

import "errors"

var errNetNSUnsupported = errors.New("network namespaces need Linux")

func createNetNS(path string) error   { return errNetNSUnsupported }
func removeNetNS(path string) error   { return nil }
func isNetNSMounted(path string) bool { return false }
