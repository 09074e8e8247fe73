package build

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-dev/berth/supervisor/runtime"
)

// source is a directory COPY and ADD read from: the build context (with
// .dockerignore applied), a named context, or the root filesystem of a
// stage or image (whose files keep their owners).
type source struct {
	dir       string
	ignore    *patternmatcher.PatternMatcher // nil: nothing ignored
	keepOwner bool
}

// newContextSource opens a build context directory and its .dockerignore
// (or <dockerfile>.dockerignore, which wins, as in BuildKit).
func newContextSource(dir, dockerfile string) (*source, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	s := &source{dir: dir}
	candidates := []string{filepath.Join(dir, ".dockerignore")}
	if dockerfile != "" {
		candidates = append([]string{dockerfile + ".dockerignore"}, candidates...)
	}
	for _, c := range candidates {
		f, err := os.Open(c)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pats, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		if s.ignore, err = patternmatcher.New(pats); err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		break
	}
	return s, nil
}

// ignored reports whether rel (slash-separated, relative to the source
// root) is excluded by .dockerignore.
func (s *source) ignored(rel string) bool {
	if s.ignore == nil || rel == "." || rel == "" {
		return false
	}
	m, err := s.ignore.MatchesOrParentMatches(filepath.FromSlash(rel))
	return err == nil && m
}

// match expands a COPY source (a path or glob relative to the source root)
// into the existing, not ignored paths it names, sorted.
func (s *source) match(src string) ([]string, error) {
	clean := path.Clean("/" + filepath.ToSlash(src))
	rel := strings.TrimPrefix(clean, "/")
	if rel == "" {
		rel = "."
	}
	if !strings.ContainsAny(rel, "*?[") {
		if _, err := os.Lstat(filepath.Join(s.dir, rel)); err != nil {
			return nil, fmt.Errorf("%q: not found in the build context", src)
		}
		if s.ignored(rel) {
			return nil, fmt.Errorf("%q: excluded by .dockerignore", src)
		}
		return []string{rel}, nil
	}
	matches, err := filepath.Glob(filepath.Join(s.dir, rel))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", src, err)
	}
	var out []string
	for _, m := range matches {
		r, err := filepath.Rel(s.dir, m)
		if err != nil || strings.HasPrefix(r, "..") {
			continue
		}
		r = filepath.ToSlash(r)
		if !s.ignored(r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: no source files were specified (nothing matches)", src)
	}
	sort.Strings(out)
	return out, nil
}

// fileEntry is one file below a matched source path.
type fileEntry struct {
	rel  string // relative to the source root, slash-separated
	info fs.FileInfo
}

// walk lists a matched path and, for a directory, everything below it that
// is not ignored, parents first.
func (s *source) walk(rel string) ([]fileEntry, error) {
	var out []fileEntry
	root := filepath.Join(s.dir, rel)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		r = filepath.ToSlash(r)
		if p != root && s.ignored(r) {
			if d.IsDir() && !s.ignore.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fileEntry{rel: r, info: fi})
		return nil
	})
	return out, err
}

// hashSources feeds what a COPY reads (paths, types, modes, owners when
// kept, link targets and contents) into h, for the cache key.
func (s *source) hashSources(h hash.Hash, matches []string) error {
	for _, m := range matches {
		real, err := s.follow(m)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "match %s %s\n", m, real)
		ents, err := s.walk(real)
		if err != nil {
			return err
		}
		for _, e := range ents {
			fmt.Fprintf(h, "%s %o", e.rel, uint32(e.info.Mode()))
			if s.keepOwner {
				if st, ok := e.info.Sys().(*syscall.Stat_t); ok {
					fmt.Fprintf(h, " %d:%d", st.Uid, st.Gid)
				}
			}
			switch {
			case e.info.Mode()&fs.ModeSymlink != 0:
				t, err := os.Readlink(filepath.Join(s.dir, e.rel))
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " -> %s", t)
			case e.info.Mode().IsRegular():
				f, err := os.Open(filepath.Join(s.dir, e.rel))
				if err != nil {
					return err
				}
				fh := sha256.New()
				_, err = io.Copy(fh, f)
				f.Close()
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " %d %s", e.info.Size(), hex.EncodeToString(fh.Sum(nil)))
			}
			h.Write([]byte{'\n'})
		}
	}
	return nil
}

// follow resolves a matched path that is a symlink to what it points at
// (inside the source root), as COPY copies the target of a named symlink;
// links below a copied directory are copied as links.
func (s *source) follow(rel string) (string, error) {
	p, err := runtime.ResolveInRoot(s.dir, rel)
	if err != nil {
		return "", err
	}
	r, err := filepath.Rel(s.dir, p)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(p); err != nil {
		return "", fmt.Errorf("%s: %w", rel, err)
	}
	return filepath.ToSlash(r), nil
}
