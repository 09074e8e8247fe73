package build

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runSpec is what a RUN container gets.
type runSpec struct {
	args    []string
	env     []string
	cwd     string
	user    string
	network string    // "" (the default bridge), "host" or "none"
	net     *buildNet // the build's default network; nil: "" is refused
	shmSize int64
	mounts  []*instructions.Mount
	binds   []specs.Mount // read-only binds, sources resolved on the host
	out     *lineWriter
}

// runArgs is the command a RUN runs. Heredocs follow BuildKit: a RUN that
// is only "<<EOF" runs the document's text with the shell; otherwise the
// command and its documents go to the shell whole, which reads them as
// shell heredocs.
func (st *stageState) runArgs(c *instructions.RunCommand) ([]string, error) {
	if len(c.Files) == 0 {
		return st.cmdline(c.ShellDependantCmdLine), nil
	}
	if !c.PrependShell || len(c.CmdLine) != 1 {
		return nil, errors.New("RUN: heredocs need the shell form")
	}
	if h := parser.MustParseHeredoc(c.CmdLine[0]); h != nil && len(c.Files) == 1 {
		if strings.HasPrefix(c.Files[0].Data, "#!") {
			return nil, fmt.Errorf("RUN heredoc with a #! interpreter line: %w", ErrNotSupported)
		}
		return append(append([]string(nil), st.shell...), c.Files[0].Data), nil
	}
	full := c.CmdLine[0]
	for _, f := range c.Files {
		full += "\n" + f.Data + f.Name
	}
	return append(append([]string(nil), st.shell...), full), nil
}
