package spec

import (
	"io"
	"os"
	"testing"

	"github.com/sirupsen/logrus"
)

// compose-go logs through logrus; berth reports the same things as
// warnings of its own, so the test output stays quiet.
func TestMain(m *testing.M) {
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}
