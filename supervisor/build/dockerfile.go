package build

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// ErrNotSupported marks Dockerfile features berth parses but does not
// implement.
var ErrNotSupported = errors.New("not supported")

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
}

// parseDockerfile parses src with BuildKit's parser.
func parseDockerfile(src []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("dockerfile parse error: %w", err)
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("dockerfile parse error: %w", err)
	}
	if len(stages) == 0 {
		return nil, errors.New("dockerfile has no FROM instruction")
	}
	return &dockerfile{stages: stages, metaArgs: meta, escape: res.EscapeToken}, nil
}

// platformArgs are BuildKit's predefined platform arguments; builds run on
// and for the host platform.
func platformArgs() map[string]string {
	arch := runtime.GOARCH
	variant := ""
	if arch == "arm" {
		variant = "v7"
	}
	plat := "linux/" + arch
	if variant != "" {
		plat += "/" + variant
	}
	m := map[string]string{}
	for _, p := range []string{"TARGET", "BUILD"} {
		m[p+"PLATFORM"] = plat
		m[p+"OS"] = "linux"
		m[p+"ARCH"] = arch
		m[p+"VARIANT"] = variant
	}
	return m
}

// proxyArgs may be passed as build args without an ARG instruction; they
// reach RUN steps but never the image config or the cache key.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// envList is a KEY=value list usable as a shell.EnvGetter.
type envMap struct {
	keys []string
	vals map[string]string
}

func newEnvMap() *envMap { return &envMap{vals: map[string]string{}} }

func (e *envMap) Get(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }
func (e *envMap) Keys() []string              { return e.keys }
func (e *envMap) Set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

// expander expands $VAR / ${VAR} words the way the Dockerfile frontend does.
func expander(escape rune, env shell.EnvGetter) instructions.SingleWordExpander {
	lex := shell.NewLex(escape)
	return func(word string) (string, error) {
		out, _, err := lex.ProcessWord(word, env)
		return out, err
	}
}

// metaScope evaluates the ARGs before the first FROM with the build args:
// the result is what FROM lines may use, plus the platform args.
func metaScope(df *dockerfile, buildArgs map[string]string) (*envMap, error) {
	env := newEnvMap()
	for k, v := range platformArgs() {
		env.Set(k, v)
	}
	exp := expander(df.escape, env)
	for _, a := range df.metaArgs {
		for _, kv := range a.Args {
			if v, ok := buildArgs[kv.Key]; ok {
				env.Set(kv.Key, v)
				continue
			}
			if kv.Value != nil {
				v, err := exp(*kv.Value)
				if err != nil {
					return nil, fmt.Errorf("ARG %s: %w", kv.Key, err)
				}
				env.Set(kv.Key, v)
			}
		}
	}
	return env, nil
}

// stagePlan is a stage with its FROM resolved.
type stagePlan struct {
	index    int
	name     string // display name: AS name or stage-N
	stage    instructions.Stage
	base     string // image ref, "scratch", or "" when baseStage >= 0
	baseIdx  int    // index of the stage it builds on, or -1
	platform string
	deps     []int // stages it needs (base and COPY/RUN --from)
}

// plan resolves FROM lines and stage references and returns the stages
// needed for target ("" = the last stage), in Dockerfile order, plus the
// index of the target stage.
func plan(df *dockerfile, meta *envMap, target string) ([]*stagePlan, int, error) {
	exp := expander(df.escape, meta)
	all := make([]*stagePlan, len(df.stages))
	byName := map[string]int{}
	for i, st := range df.stages {
		sp := &stagePlan{index: i, stage: st, baseIdx: -1, name: strings.ToLower(st.Name)}
		if sp.name == "" {
			sp.name = "stage-" + strconv.Itoa(i)
		}
		base, err := exp(st.BaseName)
		if err != nil {
			return nil, 0, fmt.Errorf("FROM %s: %w", st.BaseName, err)
		}
		if base == "" {
			return nil, 0, fmt.Errorf("FROM %q: the base name expands to nothing", st.BaseName)
		}
		if j, ok := byName[strings.ToLower(base)]; ok {
			sp.baseIdx = j
			sp.deps = append(sp.deps, j)
		} else {
			sp.base = base
		}
		if sp.platform, err = exp(st.Platform); err != nil {
			return nil, 0, fmt.Errorf("FROM --platform: %w", err)
		}
		if st.Name != "" {
			byName[strings.ToLower(st.Name)] = i
		}
		for _, c := range st.Commands {
			for _, from := range commandFroms(c) {
				j, ok := stageRef(from, byName, i)
				if ok {
					sp.deps = append(sp.deps, j)
				}
			}
		}
		all[i] = sp
	}
	tgt := len(all) - 1
	if target != "" {
		j, ok := byName[strings.ToLower(target)]
		if !ok {
			return nil, 0, fmt.Errorf("target stage %q could not be found", target)
		}
		tgt = j
	}
	need := map[int]bool{}
	var visit func(int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		for _, d := range all[i].deps {
			visit(d)
		}
	}
	visit(tgt)
	var out []*stagePlan
	for i, sp := range all {
		if need[i] {
			out = append(out, sp)
		}
	}
	return out, tgt, nil
}

// commandFroms lists the --from values of a command (COPY --from and RUN
// --mount from=), unexpanded.
func commandFroms(c instructions.Command) []string {
	switch c := c.(type) {
	case *instructions.CopyCommand:
		if c.From != "" {
			return []string{c.From}
		}
	case *instructions.RunCommand:
		var out []string
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" {
				out = append(out, m.From)
			}
		}
		return out
	}
	return nil
}

// stageRef resolves a --from value to an earlier stage, by name or index.
func stageRef(from string, byName map[string]int, current int) (int, bool) {
	if j, ok := byName[strings.ToLower(from)]; ok && j < current {
		return j, true
	}
	if n, err := strconv.Atoi(from); err == nil && n >= 0 && n < current {
		return n, true
	}
	return 0, false
}

// sortedKV renders a map as sorted KEY=value lines.
func sortedKV(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
