package watch

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/patternmatcher"
)

// editorTemp reports whether base (a file name) is an editor's temporary
// or backup file: vim swap files (*.swp, *.swx, *.swo) and its write test
// file 4913, emacs backups (*~), lock files (.#*) and autosaves (#*#),
// Kate swap files (.*.kate-swp), gedit's .goutputstream-*, and the *.tmp
// and *___jb_tmp___ files JetBrains editors write before renaming.
func editorTemp(base string) bool {
	switch {
	case base == "4913",
		strings.HasSuffix(base, "~"),
		strings.HasPrefix(base, ".#"),
		len(base) > 1 && strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"),
		strings.HasSuffix(base, ".kate-swp"),
		strings.HasPrefix(base, ".goutputstream-"),
		strings.HasSuffix(base, ".swp"),
		strings.HasSuffix(base, ".swx"),
		strings.HasSuffix(base, ".swo"),
		strings.HasSuffix(base, ".tmp"),
		strings.HasSuffix(base, "___jb_tmp___"),
		strings.HasSuffix(base, "___jb_old___"):
		return true
	}
	return false
}

// Matcher decides which paths under a watched root are ignored. Paths are
// slash-separated and relative to the root ("src/app.js"). The zero
// Matcher ignores nothing but editor temp files.
type Matcher struct {
	// ignore holds .dockerignore patterns relative to the root; context
	// holds the .dockerignore of a build context that contains the root,
	// with ctxPrefix the root's path relative to that context.
	ignore    *patternmatcher.PatternMatcher
	context   *patternmatcher.PatternMatcher
	ctxPrefix string
	include   *patternmatcher.PatternMatcher
}

// NewMatcher builds a matcher from a rule's ignore and include patterns
// (relative to the watched root, .dockerignore syntax, "!" negates).
func NewMatcher(ignore, include []string) (*Matcher, error) {
	m := &Matcher{}
	var err error
	if len(ignore) > 0 {
		if m.ignore, err = patternmatcher.New(cleanPatterns(ignore)); err != nil {
			return nil, fmt.Errorf("ignore: %w", err)
		}
	}
	if len(include) > 0 {
		if m.include, err = patternmatcher.New(cleanPatterns(include)); err != nil {
			return nil, fmt.Errorf("include: %w", err)
		}
	}
	return m, nil
}

// cleanPatterns trims patterns and drops empty ones and comments.
func cleanPatterns(ps []string) []string {
	var out []string
	for _, p := range ps {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		out = append(out, p)
	}
	return out
}

// ReadDockerignore reads the patterns of dir/.dockerignore; a missing file
// gives none.
func ReadDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil // none, or dir is a file (a rule watching one file)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return cleanPatterns(out), nil
}

// AddContextIgnore adds the .dockerignore patterns of a build context dir
// that contains root (or is root). Patterns match paths relative to the
// context, as docker build reads them.
func (m *Matcher) AddContextIgnore(contextDir, root string, patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	rel, err := filepath.Rel(contextDir, root)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil // root lies outside the context: its .dockerignore does not apply
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(contextDir, ".dockerignore"), err)
	}
	m.context, m.ctxPrefix = pm, filepath.ToSlash(rel)
	if m.ctxPrefix == "." {
		m.ctxPrefix = ""
	}
	return nil
}

// Ignored reports whether rel (a path relative to the root, file or
// directory) is left out: an editor temp file, matched by the context's
// .dockerignore or the rule's ignore, or (for files) not matched by
// include when include is set.
func (m *Matcher) Ignored(rel string, isDir bool) bool {
	rel = path.Clean(filepath.ToSlash(rel))
	if rel == "." || rel == "" {
		return false
	}
	if editorTemp(path.Base(rel)) && !isDir {
		return true
	}
	if m.context != nil {
		crel := rel
		if m.ctxPrefix != "" {
			crel = m.ctxPrefix + "/" + rel
		}
		if matches(m.context, crel) {
			return true
		}
	}
	if m.ignore != nil && matches(m.ignore, rel) {
		return true
	}
	if m.include != nil && !isDir && !matches(m.include, rel) {
		return true
	}
	return false
}

// SkipDir reports whether a directory can be left unwatched and unwalked:
// it is ignored and no negated pattern could bring back something below
// it. Directories are never skipped for include (a file deeper down may
// match).
func (m *Matcher) SkipDir(rel string) bool {
	if !m.Ignored(rel, true) {
		return false
	}
	if m.context != nil && m.context.Exclusions() {
		return false
	}
	if m.ignore != nil && m.ignore.Exclusions() {
		return false
	}
	return true
}

// matches applies pm to a slash path; a pattern matching a parent
// directory matches everything below it, as in .dockerignore.
func matches(pm *patternmatcher.PatternMatcher, rel string) bool {
	ok, err := pm.MatchesOrParentMatches(filepath.FromSlash(rel))
	return err == nil && ok
}
