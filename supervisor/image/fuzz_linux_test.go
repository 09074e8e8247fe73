package image

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"testing"
)

// fuzzProgramTar turns fuzz bytes into a tar of hostile entries: each
// three bytes pick an entry type, a name and a link target from lists built
// to reach outside the layer (.., absolute paths to the sentinel, symlinks
// planted then used as directories).
func fuzzProgramTar(t testing.TB, data []byte, sentinel string) []byte {
	names := []string{"a", "a/b", "a/b/c", "../a", "../sentinel/file", "/abs", "a/../../sentinel/x",
		"sentinel/file", "l", "l/x", "l/sub/y", "l/sub", sentinel + "/file", sentinel + "/new", "./", "..", "h", "h/z", "a/.wh.b", "l/.wh..wh..opq"}
	targets := []string{"../sentinel", sentinel, "/", "..", "a", "l", "../../..", sentinel + "/file", "l/x", "a/b", "/../sentinel/sub", "h"}
	types := []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeReg, tar.TypeSymlink}
	var entries []tarEntry
	for i := 0; i+2 < len(data) && len(entries) < 64; i += 3 {
		e := tarEntry{typ: types[int(data[i])%len(types)], name: names[int(data[i+1])%len(names)]}
		if e.typ == tar.TypeSymlink || e.typ == tar.TypeLink {
			e.link = targets[int(data[i+2])%len(targets)]
		}
		if e.typ == tar.TypeReg {
			e.body = "pwned"
		}
		if e.typ == tar.TypeDir && e.name[len(e.name)-1] != '/' {
			e.name += "/"
		}
		if e.name == "./" && e.typ != tar.TypeDir {
			continue
		}
		entries = append(entries, e)
	}
	return makeTar(t, entries)
}

// FuzzUnpack feeds crafted tars to the unpacker (both the raw fuzz bytes as
// a tar and a tar built from them) and checks that the sentinel directory
// beside the layer, and the directory holding both, are untouched.
func FuzzUnpack(f *testing.F) {
	for _, seed := range [][]byte{
		{2, 8, 1, 0, 9, 0},          // symlink l -> sentinel, file l/x
		{2, 8, 0, 1, 10, 0},         // symlink l -> ../sentinel, dir l/sub/y
		{1, 0, 0, 2, 0, 1, 0, 1, 0}, // dir a, symlink a -> sentinel, file a/b
		{3, 16, 7, 0, 16, 0},        // hardlink h -> sentinel/file, write h
		{0, 4, 0, 0, 6, 0, 0, 12, 0},
	} {
		f.Add(seed)
	}
	f.Add(makeTar(f, []tarEntry{{name: "evil", typ: tar.TypeSymlink, link: "/"}, {name: "evil/etc/x", body: "x"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, raw := range []bool{true, false} {
			base := escapeSetup(t)
			sentinel := filepath.Join(base, "sentinel")
			before := treeHash(t, sentinel)
			in := data
			if !raw {
				in = fuzzProgramTar(t, data, sentinel)
			}
			unpackTar(bytes.NewReader(in), filepath.Join(base, "layer")) // errors are fine
			assertContained(t, base, before)
		}
	})
}
