package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits applied to every stack file before compose-go sees it. compose-go
// expands aliases while decoding, so a small file can otherwise grow
// without bound ("billion laughs"); these limits are far above any real
// stack file.
const (
	maxFileSize      = 8 << 20 // bytes of YAML per file
	maxDepth         = 128     // nesting of mappings and sequences, aliases followed
	maxExpandedNodes = 200_000 // nodes once every alias is expanded (a 200-service stack has ~10k)
)

// yamlFile is one parsed stack file: the documents as yaml.v3 node trees,
// kept to validate them and to find positions for errors.
type yamlFile struct {
	Path    string // absolute
	Display string // as shown in errors
	Content []byte
	Docs    []*yaml.Node // document nodes' single content node (a mapping for a valid file)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses content into node trees and applies the size, depth
// and alias-expansion limits. It does not expand aliases.
func parseYAML(path, display string, content []byte) (*yamlFile, error) {
	f := &yamlFile{Path: path, Display: display, Content: content}
	if len(content) > maxFileSize {
		return nil, &Error{File: display, Msg: fmt.Sprintf("file is larger than %d MiB", maxFileSize>>20)}
	}
	if err := scanFlowDepth(content, display); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, yamlSyntaxError(display, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		g := guard{file: display, size: map[*yaml.Node]int{}, depth: map[*yaml.Node]int{}}
		if _, _, err := g.walk(root, 1); err != nil {
			return nil, err
		}
		f.Docs = append(f.Docs, root)
	}
	return f, nil
}

func yamlSyntaxError(display string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: display, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: display, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// scanFlowDepth rejects deeply nested flow collections ([[[[...) before
// the YAML parser recurses into them. Brackets inside quoted scalars and
// comments are skipped; block nesting is bounded by the tree walk later.
func scanFlowDepth(b []byte, display string) error {
	depth, line := 0, 1
	var quote byte
	comment := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\n' {
			line++
			comment = false
			if quote == 0 {
				continue
			}
		}
		switch {
		case comment:
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '#' && (i == 0 || b[i-1] == ' ' || b[i-1] == '\t' || b[i-1] == '\n'):
			comment = true
		case (c == '"' || c == '\'') && depth > 0:
			quote = c
		case c == '[' || c == '{':
			depth++
			if depth > maxDepth {
				return &Error{File: display, Line: line, Msg: fmt.Sprintf("YAML nested deeper than %d levels", maxDepth)}
			}
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// guard measures a node tree as compose-go would see it once aliases are
// expanded, memoizing per node so that the walk itself stays linear.
type guard struct {
	file  string
	size  map[*yaml.Node]int
	depth map[*yaml.Node]int
	big   *yaml.Node // the alias with the largest expansion so far
	bigN  int
}

func (g *guard) walk(n *yaml.Node, level int) (size, depth int, err error) {
	if n == nil {
		return 0, 0, nil
	}
	if level > maxDepth {
		return 0, 0, &Error{File: g.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("YAML nested deeper than %d levels", maxDepth)}
	}
	if s, ok := g.size[n]; ok {
		if s < 0 {
			return 0, 0, &Error{File: g.file, Line: n.Line, Column: n.Column, Msg: "YAML alias refers to itself"}
		}
		d := g.depth[n]
		if level+d-1 > maxDepth {
			return 0, 0, &Error{File: g.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("YAML nested deeper than %d levels", maxDepth)}
		}
		return s, d, nil
	}
	g.size[n] = -1 // in progress
	size, depth = 1, 1
	children := n.Content
	if n.Kind == yaml.AliasNode {
		children = []*yaml.Node{n.Alias}
		size = 0
	}
	for _, c := range children {
		s, d, err := g.walk(c, level+1)
		if err != nil {
			return 0, 0, err
		}
		size += s
		if n.Kind == yaml.AliasNode {
			d--
		}
		if d+1 > depth {
			depth = d + 1
		}
		if size > maxExpandedNodes {
			at := n
			if g.big != nil {
				at = g.big
			}
			return 0, 0, &Error{File: g.file, Line: at.Line, Column: at.Column,
				Msg: fmt.Sprintf("YAML aliases expand to more than %d nodes (alias bomb?)", maxExpandedNodes)}
		}
	}
	if n.Kind == yaml.AliasNode && size > g.bigN {
		g.big, g.bigN = n, size
	}
	g.size[n] = size
	g.depth[n] = depth
	return size, depth, nil
}

// resolve follows an alias to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// mapGet returns the key and value nodes of k in mapping m, looking
// through merge keys (<<) as YAML does: explicit keys win over merged ones.
func mapGet(m *yaml.Node, k string) (key, val *yaml.Node) {
	return mapGetDepth(resolve(m), k, 0)
}

func mapGetDepth(m *yaml.Node, k string, depth int) (key, val *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode || depth > maxDepth {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k && m.Content[i].Tag != "!!merge" {
			return m.Content[i], m.Content[i+1]
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Tag != "!!merge" {
			continue
		}
		v := resolve(m.Content[i+1])
		srcs := []*yaml.Node{v}
		if v != nil && v.Kind == yaml.SequenceNode {
			srcs = v.Content
		}
		for _, s := range srcs {
			if kk, vv := mapGetDepth(resolve(s), k, depth+1); kk != nil {
				return kk, vv
			}
		}
	}
	return nil, nil
}

// mapEntries lists a mapping's entries with merge keys applied, in file
// order, explicit keys shadowing merged ones.
func mapEntries(m *yaml.Node) (keys, vals []*yaml.Node) {
	seen := map[string]bool{}
	var add func(m *yaml.Node, depth int)
	add = func(m *yaml.Node, depth int) {
		m = resolve(m)
		if m == nil || m.Kind != yaml.MappingNode || depth > maxDepth {
			return
		}
		var merges []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i]
			if k.Tag == "!!merge" {
				merges = append(merges, m.Content[i+1])
				continue
			}
			if seen[k.Value] {
				continue
			}
			seen[k.Value] = true
			keys = append(keys, k)
			vals = append(vals, m.Content[i+1])
		}
		for _, mv := range merges {
			v := resolve(mv)
			if v != nil && v.Kind == yaml.SequenceNode {
				for _, s := range v.Content {
					add(s, depth+1)
				}
			} else {
				add(v, depth+1)
			}
		}
	}
	add(m, 0)
	return keys, vals
}

// lookup finds the node at path in f and returns the node to point at: a
// mapping entry's key, or a sequence item. It returns the deepest node it
// could reach, and whether it reached the whole path.
func (f *yamlFile) lookup(path keyPath) (*yaml.Node, bool) {
	var best *yaml.Node
	for _, doc := range f.Docs {
		n, cur, ok := doc, (*yaml.Node)(nil), true
		for _, e := range path {
			n = resolve(n)
			switch v := e.(type) {
			case string:
				k, val := mapGet(n, v)
				if k == nil {
					ok = false
				} else {
					cur, n = k, val
				}
			case int:
				if n == nil || n.Kind != yaml.SequenceNode || v < 0 || v >= len(n.Content) {
					ok = false
				} else {
					n = n.Content[v]
					cur = n
				}
			}
			if !ok {
				break
			}
		}
		if ok {
			return cur, true
		}
		if cur != nil {
			best = cur
		}
	}
	return best, false
}
