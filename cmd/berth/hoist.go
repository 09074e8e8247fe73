package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// projectFlagArity maps Docker Compose's project-level flags to whether
// they take a value. `docker compose -f x.yml up` puts them before the
// command; berth defines them on each command that reads a stack (a root
// flag -f would collide with `logs -f` and `rm -f`), so hoistProjectFlags
// moves them behind the command name before cobra parses.
var projectFlagArity = map[string]bool{
	"-f": true, "--file": true,
	"-p": true, "--project-name": true,
	"--project-directory": true,
	"--env-file":          true,
	"--profile":           true,
}

// longForm spells the short project flags out: behind the command, -f may
// mean --follow (logs) or --force (rm).
var longForm = map[string]string{"-f": "--file", "-p": "--project-name"}

// globalFlagArity are the root's own flags, which may stand before or
// among project flags.
var globalFlagArity = map[string]bool{"--root": true}

// hoistProjectFlags rewrites `berth [global] [project flags] CMD args` to
// `berth [global] CMD [project flags] args`. Flags it does not know end
// the scan (cobra then reports them), and so does the first word that is
// not a flag: the command. Project flags before a command that does not
// read a stack file are an error naming both.
func hoistProjectFlags(root *cobra.Command, args []string) ([]string, error) {
	var global, project []string
	i := 0
scan:
	for i < len(args) {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		name, _, inline := strings.Cut(a, "=")
		// -fFILE: a short flag with its value attached.
		if !inline && len(a) > 2 && a[1] != '-' {
			if _, ok := projectFlagArity[a[:2]]; ok {
				project = append(project, longForm[a[:2]], a[2:])
				i++
				continue
			}
		}
		var dst *[]string
		switch {
		case projectFlagArity[name]:
			dst = &project
		case globalFlagArity[name]:
			dst = &global
		default:
			break scan
		}
		if l, ok := longForm[name]; ok {
			a = l + strings.TrimPrefix(a, name)
		}
		*dst = append(*dst, a)
		i++
		if !inline {
			if i >= len(args) {
				return nil, fmt.Errorf("flag needs an argument: %s", name)
			}
			*dst = append(*dst, args[i])
			i++
		}
	}
	if len(project) == 0 {
		return args, nil
	}
	if i >= len(args) || args[i] == "--" || strings.HasPrefix(args[i], "-") && args[i] != "-" {
		if i < len(args) && args[i] != "--" {
			// An unknown flag: let cobra name it.
			return args, nil
		}
		return nil, fmt.Errorf("%s given without a command (e.g. berth %s up)", project[0], strings.Join(project, " "))
	}
	cmd, _, err := root.Find([]string{args[i]})
	if err != nil || cmd == root {
		return args, nil // cobra reports the unknown command
	}
	if cmd.Flags().Lookup("file") == nil {
		return nil, fmt.Errorf("%s: 'berth %s' does not read a stack file", project[0], cmd.Name())
	}
	out := make([]string, 0, len(args))
	out = append(out, global...)
	out = append(out, args[i])
	out = append(out, project...)
	return append(out, args[i+1:]...), nil
}
