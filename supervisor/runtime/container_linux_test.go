package runtime

import (
	"strings"
	"testing"
)

func TestPid1IsTheCommand(t *testing.T) {
	requirePrivileged(t)
	r := newTestRuntime(t)
	bundle := makeRootfs(t)
	before := takeSnapshot(t)
	res := runContainer(t, r, bundle, shSpec(`cat /proc/1/cmdline | tr '\0' ' '; echo; echo pid=$$; hostname`))
	if res.exit.Code != 0 {
		t.Fatalf("exit %d, output:\n%s", res.exit.Code, res.out)
	}
	t.Logf("output:\n%s", res.out)
	if !strings.Contains(res.out, "pid=1\n") || !strings.Contains(res.out, "berth\n") {
		t.Fatalf("unexpected output:\n%s", res.out)
	}
	after := takeSnapshot(t)
	if after != before {
		t.Fatalf("leak: before %+v after %+v", before, after)
	}
}
