package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error that comes from bad input (as
// opposed to an unreadable file), so callers can tell the two apart with
// errors.Is.
var ErrInvalid = errors.New("invalid compose project")

// Error is a load error tied to a place in a stack file. File is the name
// shown to the user (relative to the working directory where possible);
// Line and Column are 1-based and zero when unknown; Path is the key path
// ("services.web.ports[0]") and may be empty.
type Error struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap lets errors.Is(err, ErrInvalid) hold for every positioned error.
func (e *Error) Unwrap() error { return ErrInvalid }

// keyPath is a path into the YAML tree: each element is a mapping key
// (string) or a sequence index (int).
type keyPath []any

func (p keyPath) String() string {
	var b strings.Builder
	for i, e := range p {
		switch v := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

func (p keyPath) key(k string) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, k)
}

func (p keyPath) index(i int) keyPath {
	q := make(keyPath, len(p), len(p)+1)
	copy(q, p)
	return append(q, i)
}
