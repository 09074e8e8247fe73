package main

import (
	"hash/fnv"
	"io"
	"os"

	"golang.org/x/term"
)

// prefixColors are the ANSI foreground colours container prefixes get:
// cyan, yellow, green, magenta, blue and bright cyan. Red is left out so
// that it keeps meaning "error".
var prefixColors = []string{"36", "33", "32", "35", "34", "96"}

// colorFor picks a container's colour from a hash of its name, so a name
// keeps its colour from run to run and between commands (up, logs).
func colorFor(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return prefixColors[h.Sum32()%uint32(len(prefixColors))]
}

// colorize wraps s in the escape sequences of colour code c.
func colorize(c, s string) string {
	return "\x1b[" + c + "m" + s + "\x1b[0m"
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// useColor reports whether output to w gets colours: only on a terminal,
// and never when NO_COLOR is set (https://no-color.org) or --no-color was
// given.
func useColor(w io.Writer, noColor bool) bool {
	if noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	return isTerminal(w)
}
