package spec

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// LoadOptions are the inputs of Load, matching Docker Compose's flags and
// environment variables. Every field is optional.
type LoadOptions struct {
	// Files are the stack files (-f), merged in order. "-" reads Stdin.
	// Empty means COMPOSE_FILE, then discovery of compose.yaml,
	// compose.yml, docker-compose.yml or docker-compose.yaml (plus its
	// override file) in WorkingDir and its parents.
	Files []string
	// WorkingDir is where relative paths on the command line are resolved
	// and discovery starts; empty means the process's current directory.
	WorkingDir string
	// ProjectDir is --project-directory; empty means the directory of the
	// first stack file.
	ProjectDir string
	// ProjectName is -p. Empty means COMPOSE_PROJECT_NAME, then the
	// top-level name:, then the project directory's base name.
	ProjectName string
	// EnvFiles are --env-file files, read in order; empty means
	// ProjectDir/.env when it exists.
	EnvFiles []string
	// Environ is the OS environment as KEY=VALUE strings. It is never read
	// from the process, so that loading is hermetic.
	Environ []string
	// Profiles are --profile; empty means COMPOSE_PROFILES.
	Profiles []string
	// Services named on the command line: each is enabled even when its
	// profiles are not active (like Compose).
	Services []string
	// SelectServices restricts the project to Services and what they
	// depend on (docker compose config SERVICE...).
	SelectServices bool
	// Stdin is read for the file "-".
	Stdin io.Reader
}

// Default stack file names, in order of preference (as Compose).
var (
	DefaultFileNames         = []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"}
	DefaultOverrideFileNames = []string{"compose.override.yaml", "compose.override.yml", "docker-compose.override.yml", "docker-compose.override.yaml"}
)

// Load reads, merges, interpolates, validates and normalizes a stack.
// Errors name the file and, where known, line, column and key path; on
// error no Project is returned.
func Load(ctx context.Context, o LoadOptions) (*Project, error) {
	p, _, err := LoadCompose(ctx, o)
	return p, err
}

// LoadCompose is Load that also returns compose-go's normalized model, the
// form `berth config` prints (as `docker compose config` does).
func LoadCompose(ctx context.Context, o LoadOptions) (p *Project, cp *types.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			// compose-go is not meant to panic on bad input, but a
			// stack file must never crash berth: report it instead.
			p, cp, err = nil, nil, fmt.Errorf("%w: internal error while loading: %v", ErrInvalid, r)
		}
	}()
	l, err := newLoad(o)
	if err != nil {
		return nil, nil, err
	}
	// compose-go compiles its JSON schema (about 8 ms) on the first
	// validation; start it now, on another core, while the files are
	// read and parsed (once per process: later loads find it compiled).
	warmSchema.Do(func() { go schema.Validate(map[string]any{}) })
	return l.run(ctx)
}

var warmSchema sync.Once

// load holds the state of one Load call.
type load struct {
	o          LoadOptions
	cwd        string
	env        map[string]string
	projectDir string
	files      []string    // absolute, or "-"
	parsed     []*yamlFile // every file parsed, including includes/extends
	byPath     map[string]*yamlFile
	warnings   map[string]bool
	name       string // project name, once known
}

func newLoad(o LoadOptions) (*load, error) {
	l := &load{o: o, env: map[string]string{}, byPath: map[string]*yamlFile{}, warnings: map[string]bool{}}
	for _, kv := range o.Environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			l.env[k] = v
		}
	}
	wd, err := filepath.Abs(o.WorkingDir) // "" is the current directory
	if err != nil {
		return nil, err
	}
	l.cwd = wd
	return l, nil
}

func (l *load) abs(p string) string {
	if p == "-" {
		return p
	}
	if strings.HasPrefix(p, "~/") {
		if home := l.env["HOME"]; home != "" {
			p = filepath.Join(home, p[2:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.cwd, p)
	}
	return filepath.Clean(p)
}

// display is how a path is shown in messages: relative to the working
// directory when it is inside it.
func (l *load) display(p string) string {
	if p == "-" {
		return "(stdin)"
	}
	if rel, err := filepath.Rel(l.cwd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

func (l *load) run(ctx context.Context) (*Project, *types.Project, error) {
	o := l.o
	for _, f := range o.Files {
		l.files = append(l.files, l.abs(f))
	}
	if o.ProjectDir != "" {
		l.projectDir = l.abs(o.ProjectDir)
	}
	firstDir := func() string {
		if l.projectDir != "" {
			return l.projectDir
		}
		if len(l.files) > 0 && l.files[0] != "-" {
			return filepath.Dir(l.files[0])
		}
		return l.cwd
	}
	// .env is read before the files are known: it may set COMPOSE_FILE,
	// COMPOSE_PROJECT_NAME and COMPOSE_PROFILES.
	osEnv := make(map[string]string, len(l.env))
	for k, v := range l.env {
		osEnv[k] = v
	}
	envDir := firstDir()
	if err := l.readDotEnv(envDir); err != nil {
		return nil, nil, err
	}
	if len(l.files) == 0 {
		if cf := l.env["COMPOSE_FILE"]; cf != "" {
			sep := l.env["COMPOSE_PATH_SEPARATOR"]
			if sep == "" {
				sep = string(os.PathListSeparator)
			}
			for _, f := range strings.Split(cf, sep) {
				if f != "" {
					l.files = append(l.files, l.abs(f))
				}
			}
		}
	}
	if len(l.files) == 0 {
		if err := l.discover(); err != nil {
			return nil, nil, err
		}
	}
	if l.projectDir == "" {
		l.projectDir = firstDir()
	}
	if l.projectDir != envDir && len(o.EnvFiles) == 0 {
		// The project directory turned out to be elsewhere (a file found
		// in a parent directory): its .env is the one that applies.
		l.env = osEnv
		if err := l.readDotEnv(l.projectDir); err != nil {
			return nil, nil, err
		}
	}

	// Read, guard and check every file before compose-go sees it.
	var configFiles []types.ConfigFile
	for _, f := range l.files {
		content, err := l.readFile(f)
		if err != nil {
			return nil, nil, err
		}
		yf, err := l.parse(f, content, 0)
		if err != nil {
			return nil, nil, err
		}
		name := f
		configFiles = append(configFiles, types.ConfigFile{Filename: name, Content: yf.Content})
	}

	name, explicit, err := l.projectName()
	if err != nil {
		return nil, nil, err
	}
	profiles := o.Profiles
	if len(profiles) == 0 {
		for _, s := range strings.Split(l.env["COMPOSE_PROFILES"], ",") {
			if s = strings.TrimSpace(s); s != "" {
				profiles = append(profiles, s)
			}
		}
	}

	cp, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  l.projectDir,
		ConfigFiles: configFiles,
		Environment: types.Mapping(l.env),
	}, func(lo *loader.Options) {
		lo.SetProjectName(name, explicit)
		lo.Profiles = profiles
		lo.SkipConsistencyCheck = true // done below, with positions
		lo.SkipResolveEnvironment = true
		lo.SkipResolveLabels = true
		lo.ResolvePaths = true
	})
	if err != nil {
		return nil, nil, l.composeError(err)
	}
	if err := l.checkServicesNamed(cp); err != nil {
		return nil, nil, err
	}
	if len(o.Services) > 0 {
		if cp, err = cp.WithServicesEnabled(o.Services...); err != nil {
			return nil, nil, l.composeError(err)
		}
		if o.SelectServices {
			if cp, err = cp.WithSelectedServices(o.Services); err != nil {
				return nil, nil, l.composeError(err)
			}
		}
	}
	if err := l.checkReferences(cp); err != nil {
		return nil, nil, err
	}
	if cp, err = cp.WithServicesEnvironmentResolved(false); err != nil {
		return nil, nil, l.composeError(err)
	}
	if cp, err = cp.WithServicesLabelsResolved(false); err != nil {
		return nil, nil, l.composeError(err)
	}
	cp.ComposeFiles = append([]string(nil), l.files...)
	p, err := l.convert(cp)
	if err != nil {
		return nil, nil, err
	}
	return p, cp, nil
}

// readDotEnv merges --env-file files (or dir/.env) into l.env; values
// already in the OS environment win, as in Compose.
func (l *load) readDotEnv(dir string) error {
	var files []string
	for _, f := range l.o.EnvFiles {
		files = append(files, l.abs(f))
	}
	if len(files) == 0 {
		if v := strings.ToLower(l.env["COMPOSE_DISABLE_ENV_FILE"]); v == "1" || v == "true" {
			return nil
		}
		def := filepath.Join(dir, ".env")
		if st, err := os.Stat(def); err != nil || !st.Mode().IsRegular() {
			return nil
		}
		files = []string{def}
	}
	// Later files override earlier ones; the OS environment overrides all.
	merged := map[string]string{}
	for _, f := range files {
		lookup := map[string]string{}
		for k, v := range merged {
			lookup[k] = v
		}
		for k, v := range l.env {
			lookup[k] = v
		}
		vals, err := dotenv.GetEnvFromFile(lookup, []string{f})
		if err != nil {
			return &Error{File: l.display(f), Msg: "env file: " + strings.TrimPrefix(err.Error(), "failed to read "+f+": ")}
		}
		for k, v := range vals {
			merged[k] = v
		}
	}
	for k, v := range merged {
		if _, set := l.env[k]; !set {
			l.env[k] = v
		}
	}
	return nil
}

func (l *load) discover() error {
	dir := l.cwd
	if l.projectDir != "" {
		dir = l.projectDir
	}
	for {
		for _, n := range DefaultFileNames {
			f := filepath.Join(dir, n)
			if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
				l.files = append(l.files, f)
				for _, on := range DefaultOverrideFileNames {
					of := filepath.Join(dir, on)
					if st, err := os.Stat(of); err == nil && st.Mode().IsRegular() {
						l.files = append(l.files, of)
						break
					}
				}
				return nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	start := l.cwd
	if l.projectDir != "" {
		start = l.projectDir
	}
	return fmt.Errorf("%w: no stack file found in %s or any parent directory (looked for %s); use -f", ErrInvalid, start, strings.Join(DefaultFileNames, ", "))
}

func (l *load) readFile(f string) ([]byte, error) {
	if f == "-" {
		if l.o.Stdin == nil {
			return nil, fmt.Errorf("%w: -f -: no standard input", ErrInvalid)
		}
		return io.ReadAll(io.LimitReader(l.o.Stdin, maxFileSize+1))
	}
	st, err := os.Stat(f)
	if err != nil {
		return nil, fmt.Errorf("stack file %s: %w", l.display(f), err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: stack file %s is a directory", ErrInvalid, l.display(f))
	}
	if st.Size() > maxFileSize {
		return nil, &Error{File: l.display(f), Msg: fmt.Sprintf("file is larger than %d MiB", maxFileSize>>20)}
	}
	return os.ReadFile(f)
}

// parse guards and checks one file, then follows its include: and
// extends.file references so that they are guarded too. Top-level files
// (depth 0) are checked after interpolation with the project environment;
// included files have environments of their own, so their interpolated
// values are left to compose-go.
func (l *load) parse(f string, content []byte, depth int) (*yamlFile, error) {
	if yf, ok := l.byPath[f]; ok {
		return yf, nil
	}
	yf, err := parseYAML(f, l.display(f), content)
	if err != nil {
		return nil, err
	}
	var lookup func(string) (string, bool)
	var unset func(string)
	if depth == 0 {
		lookup = func(k string) (string, bool) {
			v, ok := l.env[k]
			if !ok && k == "COMPOSE_PROJECT_NAME" {
				// compose-go sets it once the name is known.
				return "project", true
			}
			return v, ok
		}
		unset = func(k string) { l.warn("variable %q is not set: using an empty string", k) }
	}
	if err := validateFile(yf, lookup, unset); err != nil {
		return nil, err
	}
	l.byPath[f] = yf
	l.parsed = append(l.parsed, yf)
	if depth > 10 || f == "-" {
		return yf, nil
	}
	dir := filepath.Dir(f)
	for _, ref := range fileRefs(yf) {
		p, err := template.Substitute(ref.value, func(k string) (string, bool) { v, ok := l.env[k]; return v, ok })
		if err != nil || p == "" || strings.Contains(p, "://") {
			continue // compose-go reports it
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		p = filepath.Clean(p)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			msg := fmt.Sprintf("file %q not found", p)
			if err == nil {
				msg = fmt.Sprintf("%q is not a regular file", p)
			}
			return nil, &Error{File: yf.Display, Line: ref.node.Line, Column: ref.node.Column, Path: ref.path.String(), Msg: msg}
		}
		if st.Size() > maxFileSize {
			return nil, &Error{File: l.display(p), Msg: fmt.Sprintf("file is larger than %d MiB", maxFileSize>>20)}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, &Error{File: yf.Display, Line: ref.node.Line, Column: ref.node.Column, Path: ref.path.String(), Msg: err.Error()}
		}
		if _, err := l.parse(p, b, depth+1); err != nil {
			return nil, err
		}
	}
	return yf, nil
}

type fileRef struct {
	value string
	node  *yaml.Node
	path  keyPath
}

// fileRefs lists the paths a file pulls in through include: and
// services.*.extends.file.
func fileRefs(f *yamlFile) []fileRef {
	var out []fileRef
	add := func(n *yaml.Node, p keyPath) {
		if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode && r.Tag != "!!null" {
			out = append(out, fileRef{value: r.Value, node: n, path: p})
		}
	}
	for _, d := range f.Docs {
		if _, inc := mapGet(d, "include"); inc != nil && resolve(inc).Kind == yaml.SequenceNode {
			for i, it := range resolve(inc).Content {
				ip := keyPath{"include", i}
				switch resolve(it).Kind {
				case yaml.ScalarNode:
					add(it, ip)
				case yaml.MappingNode:
					if _, pv := mapGet(it, "path"); pv != nil {
						if resolve(pv).Kind == yaml.SequenceNode {
							for j, x := range resolve(pv).Content {
								add(x, ip.key("path").index(j))
							}
						} else {
							add(pv, ip.key("path"))
						}
					}
				}
			}
		}
		if _, svcs := mapGet(d, "services"); svcs != nil {
			keys, vals := mapEntries(svcs)
			for i, s := range vals {
				if _, ext := mapGet(s, "extends"); ext != nil {
					if _, fv := mapGet(ext, "file"); fv != nil {
						add(fv, keyPath{"services", keys[i].Value, "extends", "file"})
					}
				}
			}
		}
	}
	return out
}

// projectName applies Compose's precedence: -p, COMPOSE_PROJECT_NAME,
// top-level name: (resolved by compose-go), directory base name.
func (l *load) projectName() (string, bool, error) {
	name := l.o.ProjectName
	if name == "" {
		name = l.env["COMPOSE_PROJECT_NAME"]
	}
	if name != "" {
		if loader.NormalizeProjectName(name) != name {
			return "", false, fmt.Errorf("%w: invalid project name %q: use only lower case letters, digits, '-' and '_', starting with a letter or digit", ErrInvalid, name)
		}
		return name, true, nil
	}
	for _, f := range l.files {
		yf := l.byPath[f]
		for _, d := range yf.Docs {
			if _, v := mapGet(d, "name"); v != nil && resolve(v).Value != "" {
				return "", false, nil // compose-go interpolates and normalizes it
			}
		}
	}
	name = loader.NormalizeProjectName(filepath.Base(l.projectDir))
	if name == "" {
		return "", false, fmt.Errorf("%w: cannot derive a project name from directory %s: use -p or name:", ErrInvalid, l.projectDir)
	}
	return name, false, nil
}

func (l *load) checkServicesNamed(cp *types.Project) error {
	for _, s := range l.o.Services {
		_, on := cp.Services[s]
		_, off := cp.DisabledServices[s]
		if !on && !off {
			return fmt.Errorf("%w: no such service: %q", ErrInvalid, s)
		}
	}
	return nil
}

func (l *load) warn(format string, args ...any) {
	l.warnings[fmt.Sprintf(format, args...)] = true
}

// at builds a positioned error for path, looking the path up in the
// loaded files (the last file that has it wins, as in a merge).
func (l *load) at(path keyPath, msg string) error {
	for i := len(l.parsed) - 1; i >= 0; i-- {
		f := l.parsed[i]
		if n, ok := f.lookup(path); ok {
			return &Error{File: f.Display, Line: n.Line, Column: n.Column, Path: path.String(), Msg: msg}
		}
	}
	// Partial match: point at the deepest node found.
	for i := len(l.parsed) - 1; i >= 0; i-- {
		f := l.parsed[i]
		if n, _ := f.lookup(path); n != nil {
			return &Error{File: f.Display, Line: n.Line, Column: n.Column, Path: path.String(), Msg: msg}
		}
	}
	e := &Error{Path: path.String(), Msg: msg}
	if len(l.parsed) == 1 {
		e.File = l.parsed[0].Display
	}
	return e
}

// atItem is at for a reference inside a list or mapping at path: it finds
// the list item or mapping key that match.
func (l *load) atItem(path keyPath, match func(*yaml.Node) bool, msg string) error {
	for i := len(l.parsed) - 1; i >= 0; i-- {
		f := l.parsed[i]
		n, ok := f.lookup(path)
		if !ok {
			continue
		}
		var container *yaml.Node
		for _, d := range f.Docs {
			cur := d
			good := true
			for _, e := range path {
				switch v := e.(type) {
				case string:
					_, cur = mapGet(cur, v)
				case int:
					cur = resolve(cur)
					if cur != nil && cur.Kind == yaml.SequenceNode && v < len(cur.Content) {
						cur = cur.Content[v]
					} else {
						cur = nil
					}
				}
				if cur == nil {
					good = false
					break
				}
			}
			if good {
				container = resolve(cur)
				break
			}
		}
		if container != nil {
			switch container.Kind {
			case yaml.SequenceNode:
				for idx, it := range container.Content {
					if match(resolve(it)) {
						return &Error{File: f.Display, Line: it.Line, Column: it.Column, Path: path.index(idx).String(), Msg: msg}
					}
				}
			case yaml.MappingNode:
				keys, _ := mapEntries(container)
				for _, k := range keys {
					if match(k) {
						return &Error{File: f.Display, Line: k.Line, Column: k.Column, Path: path.key(k.Value).String(), Msg: msg}
					}
				}
			}
		}
		return &Error{File: f.Display, Line: n.Line, Column: n.Column, Path: path.String(), Msg: msg}
	}
	return l.at(path, msg)
}

func scalarIs(name string) func(*yaml.Node) bool {
	return func(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Value == name }
}

// checkReferences replaces compose-go's consistency check with one that
// points at the offending entry.
func (l *load) checkReferences(cp *types.Project) error {
	names := cp.ServiceNames()
	sort.Strings(names)
	for _, name := range names {
		s := cp.Services[name]
		sp := keyPath{"services", name}
		if s.Image == "" && s.Build == nil && s.Provider == nil {
			return l.at(sp, "service has neither an image nor a build context")
		}
		if err := l.checkServiceFiles(sp, &s); err != nil {
			return err
		}
		if s.Scale != nil && s.Deploy != nil && s.Deploy.Replicas != nil && *s.Scale != *s.Deploy.Replicas {
			return l.at(sp.key("scale"), fmt.Sprintf("scale (%d) and deploy.replicas (%d) differ", *s.Scale, *s.Deploy.Replicas))
		}
		if s.ContainerName != "" {
			if n := replicasOf(&s); n > 1 {
				return l.at(sp.key("container_name"), fmt.Sprintf("container_name %q cannot be used with %d replicas (names must be unique)", s.ContainerName, n))
			}
		}
		for _, n := range sortedKeys(s.Networks) {
			if _, ok := cp.Networks[n]; !ok {
				return l.atItem(sp.key("networks"), scalarIs(n), fmt.Sprintf("undefined network %q (declare it under the top-level networks:)", n))
			}
		}
		if s.NetworkMode != "" && len(s.Networks) > 0 && s.NetworkMode != "bridge" {
			return l.at(sp.key("network_mode"), "network_mode cannot be combined with networks")
		}
		if strings.HasPrefix(s.NetworkMode, types.NetworkModeServicePrefix) {
			dep := strings.TrimPrefix(s.NetworkMode, types.NetworkModeServicePrefix)
			if err := l.checkServiceRef(cp, sp.key("network_mode"), dep, true, "network_mode uses"); err != nil {
				return err
			}
		}
		for _, vf := range s.VolumesFrom {
			if strings.HasPrefix(vf, types.ContainerPrefix) {
				continue
			}
			dep, _, _ := strings.Cut(vf, ":")
			if err := l.checkServiceRef(cp, sp.key("volumes_from"), dep, true, "volumes_from uses"); err != nil {
				return err
			}
		}
		for _, lk := range s.Links {
			dep, _, _ := strings.Cut(lk, ":")
			if err := l.checkServiceRef(cp, sp.key("links"), dep, true, "links to"); err != nil {
				return err
			}
		}
		for _, dep := range sortedKeys(s.DependsOn) {
			if err := l.checkServiceRef(cp, sp.key("depends_on"), dep, s.DependsOn[dep].Required, "depends on"); err != nil {
				return err
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				if _, ok := cp.Volumes[v.Source]; !ok {
					src := v.Source
					return l.atItem(sp.key("volumes"), func(n *yaml.Node) bool {
						if n.Kind == yaml.ScalarNode {
							return strings.HasPrefix(n.Value, src+":")
						}
						_, sv := mapGet(n, "source")
						return sv != nil && resolve(sv).Value == src
					}, fmt.Sprintf("undefined volume %q (declare it under the top-level volumes:)", src))
				}
			}
		}
		for _, ref := range s.Secrets {
			if _, ok := cp.Secrets[ref.Source]; !ok {
				return l.atItem(sp.key("secrets"), refMatch(ref.Source), fmt.Sprintf("undefined secret %q (declare it under the top-level secrets:)", ref.Source))
			}
		}
		for _, ref := range s.Configs {
			if _, ok := cp.Configs[ref.Source]; !ok {
				return l.atItem(sp.key("configs"), refMatch(ref.Source), fmt.Sprintf("undefined config %q (declare it under the top-level configs:)", ref.Source))
			}
		}
	}
	// Two services cannot share one container_name.
	seen := map[string]string{}
	for _, name := range names {
		cn := cp.Services[name].ContainerName
		if cn == "" {
			continue
		}
		if other, ok := seen[cn]; ok {
			return l.at(keyPath{"services", name, "container_name"}, fmt.Sprintf("container name %q is already used by service %q", cn, other))
		}
		seen[cn] = name
	}
	return nil
}

func replicasOf(s *types.ServiceConfig) int {
	n := 1
	if s.Scale != nil {
		n = *s.Scale
	}
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		n = *s.Deploy.Replicas
	}
	return n
}

// checkServiceFiles reports a missing required env_file or label_file at
// its entry (compose-go's message names neither service nor position).
func (l *load) checkServiceFiles(sp keyPath, s *types.ServiceConfig) error {
	baseIs := func(p string) func(*yaml.Node) bool {
		return func(n *yaml.Node) bool {
			v := n.Value
			if n.Kind == yaml.MappingNode {
				v = scalarValue(n, "path")
			}
			return v != "" && filepath.Base(v) == filepath.Base(p)
		}
	}
	for _, ef := range s.EnvFiles {
		if !bool(ef.Required) {
			continue
		}
		if st, err := os.Stat(ef.Path); err != nil || st.IsDir() {
			return l.atItem(sp.key("env_file"), baseIs(ef.Path), fmt.Sprintf("env file %q not found", ef.Path))
		}
	}
	for _, lf := range s.LabelFiles {
		if st, err := os.Stat(lf); err != nil || st.IsDir() {
			return l.atItem(sp.key("label_file"), baseIs(lf), fmt.Sprintf("label file %q not found", lf))
		}
	}
	return nil
}

func refMatch(name string) func(*yaml.Node) bool {
	return func(n *yaml.Node) bool {
		if n.Kind == yaml.ScalarNode {
			return n.Value == name
		}
		_, sv := mapGet(n, "source")
		return sv != nil && resolve(sv).Value == name
	}
}

func (l *load) checkServiceRef(cp *types.Project, path keyPath, dep string, required bool, verb string) error {
	if _, ok := cp.Services[dep]; ok {
		return nil
	}
	match := func(n *yaml.Node) bool {
		v := n.Value
		if i := strings.IndexByte(v, ':'); i >= 0 && path[len(path)-1] != "network_mode" {
			v = v[:i]
		}
		return n.Kind == yaml.ScalarNode && (v == dep || strings.TrimPrefix(n.Value, "service:") == dep)
	}
	if d, ok := cp.DisabledServices[dep]; ok {
		if !required {
			return nil
		}
		if path[len(path)-1] == "network_mode" {
			return l.at(path, fmt.Sprintf("%s service %q, which is disabled (enable one of its profiles: %s)", verb, dep, strings.Join(d.Profiles, ", ")))
		}
		return l.atItem(path, match, fmt.Sprintf("%s service %q, which is disabled (enable one of its profiles: %s)", verb, dep, strings.Join(d.Profiles, ", ")))
	}
	if !required {
		return nil
	}
	if path[len(path)-1] == "network_mode" {
		return l.at(path, fmt.Sprintf("%s undefined service %q", verb, dep))
	}
	return l.atItem(path, match, fmt.Sprintf("%s undefined service %q", verb, dep))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// composeError gives a compose-go error a position where its message
// names a key path.
func (l *load) composeError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s):\n\n")
	if i := strings.Index(msg, "\n"); i >= 0 && strings.HasPrefix(msg, "'") {
		msg = msg[:i]
	}
	var path keyPath
	if m := parseErrRE.FindStringSubmatch(msg); m != nil {
		// A YAML error from compose-go's own parser (yaml v4), for a
		// file berth's parser accepted: report it like berth's.
		e := &Error{File: l.displayFor(m[1]), Msg: "invalid YAML: " + m[2]}
		if lm := yamlInnerLineRE.FindStringSubmatch(m[2]); lm != nil {
			e.Line, _ = strconv.Atoi(lm[1])
			e.Msg = "invalid YAML: " + strings.TrimPrefix(lm[2], "yaml: ")
		}
		return e
	}
	if strings.HasPrefix(msg, "Circular reference:\n") {
		// "  a in FILE\n  extends b in FILE\n  extends a in FILE"
		var chain []string
		for _, ln := range strings.Split(msg, "\n")[1:] {
			ln = strings.TrimPrefix(strings.TrimSpace(ln), "extends ")
			if name, _, ok := strings.Cut(ln, " in "); ok {
				chain = append(chain, name)
			}
		}
		if len(chain) > 1 && chain[0] == chain[len(chain)-1] {
			// compose-go starts the cycle at whichever service it met
			// first (map order): start it at the smallest name instead.
			ring := chain[:len(chain)-1]
			min := 0
			for i := range ring {
				if ring[i] < ring[min] {
					min = i
				}
			}
			chain = append(append(append([]string{}, ring[min:]...), ring[:min]...), ring[min])
		}
		if len(chain) > 0 {
			return l.at(keyPath{"services", chain[0], "extends"}, "extends cycle: "+strings.Join(chain, " -> "))
		}
	}
	if strings.HasPrefix(msg, "include cycle detected:\n") {
		var chain []string
		for _, ln := range strings.Split(msg, "\n")[1:] {
			chain = append(chain, l.displayFor(strings.TrimPrefix(strings.TrimSpace(ln), "include ")))
		}
		return l.at(keyPath{"include"}, "include cycle: "+strings.Join(chain, " -> "))
	}
	if m := extendsErrRE.FindStringSubmatch(msg); m != nil {
		return l.at(keyPath{"services", m[1], "extends"}, m[3])
	}
	if m := cannotOverrideRE.FindStringSubmatch(msg); m != nil {
		return l.at(parseDotted(m[1]), "cannot be merged with the value in an earlier file (use !override or !reset)")
	}
	if m := resourceErrRE.FindStringSubmatch(msg); m != nil {
		return l.at(parseDotted(m[1]), m[2])
	}
	if m := interpFormatRE.FindStringSubmatch(msg); m != nil {
		return l.at(parseDotted(m[1]), "invalid interpolation format (write a literal $ as $$)")
	}
	switch {
	case strings.HasPrefix(msg, "validating "):
		rest := strings.TrimPrefix(msg, "validating ")
		if i := strings.Index(rest, ": "); i >= 0 {
			rest = rest[i+2:]
		}
		rest = strings.TrimLeft(rest, " ")
		p, m, _ := strings.Cut(rest, " ")
		if strings.HasPrefix(rest, "additional properties") {
			p, m = "", rest
		}
		path, msg = parseDotted(p), m
	case strings.HasPrefix(msg, "error while interpolating "):
		rest := strings.TrimPrefix(msg, "error while interpolating ")
		p, m, _ := strings.Cut(rest, ": ")
		path, msg = parseDotted(p), m
	case strings.HasPrefix(msg, "'"):
		end := strings.Index(msg[1:], "'")
		if end > 0 {
			p := msg[1 : end+1]
			p = strings.ReplaceAll(strings.ReplaceAll(p, "[", "."), "]", "")
			path, msg = parseDotted(p), strings.TrimSpace(msg[end+2:])
		}
	}
	if len(path) > 0 {
		if e, ok := l.at(path, msg).(*Error); ok {
			return e
		}
	}
	e := &Error{Msg: msg}
	if len(l.parsed) == 1 {
		e.File = l.parsed[0].Display
	}
	return e
}

var (
	parseErrRE       = regexp.MustCompile(`(?s)^failed to parse (.+?): yaml: (.*)$`)
	yamlInnerLineRE  = regexp.MustCompile(`(?s)line (\d+): (.*)$`)
	extendsErrRE     = regexp.MustCompile(`^cannot extend service "([^"]+)" in (.+?): (.*)$`)
	cannotOverrideRE = regexp.MustCompile(`^cannot override (\S+)$`)
	resourceErrRE    = regexp.MustCompile(`^((?:secrets|configs|volumes|networks)\.[a-zA-Z0-9._-]+): (.*)$`)
	interpFormatRE   = regexp.MustCompile(`^invalid interpolation format for ([^\s]+?)\.?\n`)
)

// displayFor shows a file path compose-go reported as berth would.
func (l *load) displayFor(p string) string {
	if f, ok := l.byPath[p]; ok {
		return f.Display
	}
	return l.display(p)
}

// parseDotted turns "services.web.ports.0" into a keyPath. A "[]"
// element (any item) ends the path.
func parseDotted(s string) keyPath {
	var p keyPath
	if s == "" {
		return p
	}
	for _, e := range strings.Split(s, ".") {
		if e == "[]" || e == "" {
			break
		}
		if n, err := strconv.Atoi(e); err == nil && len(p) > 0 {
			p = append(p, n)
			continue
		}
		p = append(p, e)
	}
	return p
}
