//go:build !linux

package supervisor

import "errors"

var errNetNSUnsupported = errors.New("network namespaces need Linux")

func createNetNS(path string) error   { return errNetNSUnsupported }
func removeNetNS(path string) error   { return nil }
func isNetNSMounted(path string) bool { return false }

func setNetSysctls(path string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	return errNetNSUnsupported
}
