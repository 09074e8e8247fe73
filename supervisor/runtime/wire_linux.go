package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
)

// The init config goes to the init in a hand-written binary encoding,
// not JSON: a container init is a fresh process, and encoding/json would
// first build its decoders for the ~15 struct types of a config by
// reflection, which cost an init more (0.6 ms) than the rest of its
// decoding and most of its own work before the mounts.
//
// The encoding carries what the init applies and nothing else (the
// runtime applies the rest: namespaces and id maps when it clones the
// init, cgroup resources, poststart and poststop hooks). A field the init
// starts to read must be added here; TestInitWireRoundTrip lists the
// fields carried.
//
// Layout: a magic and version, then the fields in a fixed order. Numbers
// are uvarints (ints zigzag varints), strings and byte slices are a
// length and the bytes, lists and maps a count and their items (maps in
// key order), optional values a presence byte first.

const initWireMagic = "berth-init/1\n"

type wireWriter struct{ b []byte }

func (w *wireWriter) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wireWriter) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *wireWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *wireWriter) bytes(v []byte) { w.uint(uint64(len(v))); w.b = append(w.b, v...) }
func (w *wireWriter) str(v string)   { w.uint(uint64(len(v))); w.b = append(w.b, v...) }
func (w *wireWriter) strs(v []string) {
	w.uint(uint64(len(v)))
	for _, s := range v {
		w.str(s)
	}
}
func (w *wireWriter) strMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.uint(uint64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(m[k])
	}
}

// present writes whether an optional value follows.
func (w *wireWriter) present(ok bool) bool { w.bool(ok); return ok }

var errWireShort = errors.New("init config: truncated")

type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *wireReader) uint() uint64 { return readVarint(r, binary.Uvarint) }
func (r *wireReader) int() int64   { return readVarint(r, binary.Varint) }

func readVarint[T uint64 | int64](r *wireReader, decode func([]byte) (T, int)) T {
	v, n := decode(r.b)
	if n <= 0 {
		r.fail(errWireShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) bool() bool {
	if len(r.b) < 1 {
		r.fail(errWireShort)
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail(fmt.Errorf("init config: bad boolean %d", v))
	}
	return v == 1
}

// count reads a length or count, which cannot exceed what is left.
func (r *wireReader) count() int {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.fail(errWireShort)
		return 0
	}
	return int(n)
}

// raw reads a length and that many bytes, still in the buffer.
func (r *wireReader) raw() []byte {
	n := r.count()
	if r.err != nil {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *wireReader) bytes() []byte { return bytes.Clone(r.raw()) }
func (r *wireReader) str() string   { return string(r.raw()) }

func (r *wireReader) strs() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = r.str()
	}
	return v
}

func (r *wireReader) strMap() map[string]string {
	n := r.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.str()
		m[k] = r.str()
	}
	return m
}

func (r *wireReader) uint32() uint32 {
	v := r.uint()
	if v > math.MaxUint32 {
		r.fail(fmt.Errorf("init config: %d does not fit 32 bits", v))
	}
	return uint32(v)
}

// encodeInitConfig encodes c for the init.
func encodeInitConfig(c *initConfig) []byte {
	w := &wireWriter{b: make([]byte, 0, 4096)}
	w.b = append(w.b, initWireMagic...)
	w.str(c.Mode)
	w.str(c.ID)
	w.str(c.Rootfs)
	w.bool(c.NewUserNS)
	w.bool(c.NewNetNS)
	w.bool(c.NewCgroupNS)
	w.int(int64(c.NumExtra))
	w.bool(c.Reaper)
	w.bool(c.RuntimeHooks)
	w.strMap(c.CgroupPaths)
	w.bool(c.JoinCgroups)
	// nil (read them from mountinfo) differs from none.
	if w.present(c.CgroupMounts != nil) {
		w.uint(uint64(len(c.CgroupMounts)))
		for _, m := range c.CgroupMounts {
			w.str(m.Mountpoint)
			w.str(m.FSType)
			w.str(m.Options)
		}
	}
	if w.present(c.Seccomp != nil) {
		w.bytes(c.Seccomp.Prog)
		w.uint(uint64(c.Seccomp.Flags))
	}
	w.int(int64(c.LastCap))
	if w.present(c.Process != nil) {
		encodeProcess(w, c.Process)
	}
	if w.present(c.Spec != nil) {
		encodeSpec(w, c.Spec)
	}
	return w.b
}

func encodeProcess(w *wireWriter, p *specs.Process) {
	w.bool(p.Terminal)
	if w.present(p.ConsoleSize != nil) {
		w.uint(uint64(p.ConsoleSize.Height))
		w.uint(uint64(p.ConsoleSize.Width))
	}
	w.uint(uint64(p.User.UID))
	w.uint(uint64(p.User.GID))
	w.uint(uint64(len(p.User.AdditionalGids)))
	for _, g := range p.User.AdditionalGids {
		w.uint(uint64(g))
	}
	w.str(p.User.Username)
	w.strs(p.Args)
	w.strs(p.Env)
	w.str(p.Cwd)
	if c := p.Capabilities; w.present(c != nil) {
		w.strs(c.Bounding)
		w.strs(c.Effective)
		w.strs(c.Inheritable)
		w.strs(c.Permitted)
		w.strs(c.Ambient)
	}
	w.uint(uint64(len(p.Rlimits)))
	for _, rl := range p.Rlimits {
		w.str(rl.Type)
		w.uint(rl.Hard)
		w.uint(rl.Soft)
	}
	w.bool(p.NoNewPrivileges)
	if w.present(p.OOMScoreAdj != nil) {
		w.int(int64(*p.OOMScoreAdj))
	}
}

func encodeHooks(w *wireWriter, hs []specs.Hook) {
	w.uint(uint64(len(hs)))
	for _, h := range hs {
		w.str(h.Path)
		w.strs(h.Args)
		w.strs(h.Env)
		if w.present(h.Timeout != nil) {
			w.int(int64(*h.Timeout))
		}
	}
}

func encodeSpec(w *wireWriter, s *specs.Spec) {
	w.str(s.Hostname)
	w.str(s.Domainname)
	w.bool(s.Root != nil && s.Root.Readonly)
	w.uint(uint64(len(s.Mounts)))
	for _, m := range s.Mounts {
		w.str(m.Destination)
		w.str(m.Type)
		w.str(m.Source)
		w.strs(m.Options)
	}
	if h := s.Hooks; w.present(h != nil) {
		// The init runs these two; the runtime runs the others.
		encodeHooks(w, h.CreateContainer)
		encodeHooks(w, h.StartContainer)
	}
	w.strMap(s.Annotations)
	if l := s.Linux; w.present(l != nil) {
		w.uint(uint64(len(l.Devices)))
		for _, d := range l.Devices {
			w.str(d.Path)
			w.str(d.Type)
			w.int(d.Major)
			w.int(d.Minor)
			if w.present(d.FileMode != nil) {
				w.uint(uint64(*d.FileMode))
			}
			if w.present(d.UID != nil) {
				w.uint(uint64(*d.UID))
			}
			if w.present(d.GID != nil) {
				w.uint(uint64(*d.GID))
			}
		}
		w.strMap(l.Sysctl)
		w.strs(l.MaskedPaths)
		w.strs(l.ReadonlyPaths)
		w.str(l.RootfsPropagation)
	}
}

// decodeInitConfig decodes what encodeInitConfig encoded.
func decodeInitConfig(b []byte) (*initConfig, error) {
	if len(b) < len(initWireMagic) || string(b[:len(initWireMagic)]) != initWireMagic {
		return nil, errors.New("init config: not from this berth (bad magic)")
	}
	r := &wireReader{b: b[len(initWireMagic):]}
	c := &initConfig{}
	c.Mode = r.str()
	c.ID = r.str()
	c.Rootfs = r.str()
	c.NewUserNS = r.bool()
	c.NewNetNS = r.bool()
	c.NewCgroupNS = r.bool()
	c.NumExtra = int(r.int())
	c.Reaper = r.bool()
	c.RuntimeHooks = r.bool()
	c.CgroupPaths = r.strMap()
	c.JoinCgroups = r.bool()
	if r.bool() {
		n := r.count()
		c.CgroupMounts = make([]cgroups.Mount, n)
		for i := range c.CgroupMounts {
			c.CgroupMounts[i] = cgroups.Mount{Mountpoint: r.str(), FSType: r.str(), Options: r.str()}
		}
	}
	if r.bool() {
		c.Seccomp = &seccompProgram{Prog: r.bytes(), Flags: uint(r.uint())}
	}
	c.LastCap = int(r.int())
	if r.bool() {
		c.Process = decodeProcess(r)
	}
	if r.bool() {
		c.Spec = decodeSpec(r)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("init config: %d bytes left over", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

func decodeProcess(r *wireReader) *specs.Process {
	p := &specs.Process{}
	p.Terminal = r.bool()
	if r.bool() {
		p.ConsoleSize = &specs.Box{Height: uint(r.uint()), Width: uint(r.uint())}
	}
	p.User.UID = r.uint32()
	p.User.GID = r.uint32()
	if n := r.count(); n > 0 {
		p.User.AdditionalGids = make([]uint32, n)
		for i := range p.User.AdditionalGids {
			p.User.AdditionalGids[i] = r.uint32()
		}
	}
	p.User.Username = r.str()
	p.Args = r.strs()
	p.Env = r.strs()
	p.Cwd = r.str()
	if r.bool() {
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding: r.strs(), Effective: r.strs(), Inheritable: r.strs(), Permitted: r.strs(), Ambient: r.strs(),
		}
	}
	if n := r.count(); n > 0 {
		p.Rlimits = make([]specs.POSIXRlimit, n)
		for i := range p.Rlimits {
			p.Rlimits[i] = specs.POSIXRlimit{Type: r.str(), Hard: r.uint(), Soft: r.uint()}
		}
	}
	p.NoNewPrivileges = r.bool()
	if r.bool() {
		v := int(r.int())
		p.OOMScoreAdj = &v
	}
	return p
}

func decodeHooks(r *wireReader) []specs.Hook {
	n := r.count()
	if n == 0 {
		return nil
	}
	hs := make([]specs.Hook, n)
	for i := range hs {
		hs[i] = specs.Hook{Path: r.str(), Args: r.strs(), Env: r.strs()}
		if r.bool() {
			v := int(r.int())
			hs[i].Timeout = &v
		}
	}
	return hs
}

func decodeSpec(r *wireReader) *specs.Spec {
	s := &specs.Spec{}
	s.Hostname = r.str()
	s.Domainname = r.str()
	s.Root = &specs.Root{Readonly: r.bool()}
	if n := r.count(); n > 0 {
		s.Mounts = make([]specs.Mount, n)
		for i := range s.Mounts {
			s.Mounts[i] = specs.Mount{Destination: r.str(), Type: r.str(), Source: r.str(), Options: r.strs()}
		}
	}
	if r.bool() {
		s.Hooks = &specs.Hooks{CreateContainer: decodeHooks(r), StartContainer: decodeHooks(r)}
	}
	s.Annotations = r.strMap()
	if r.bool() {
		l := &specs.Linux{}
		if n := r.count(); n > 0 {
			l.Devices = make([]specs.LinuxDevice, n)
			for i := range l.Devices {
				d := &l.Devices[i]
				d.Path, d.Type, d.Major, d.Minor = r.str(), r.str(), r.int(), r.int()
				if r.bool() {
					m := os.FileMode(r.uint32())
					d.FileMode = &m
				}
				if r.bool() {
					v := r.uint32()
					d.UID = &v
				}
				if r.bool() {
					v := r.uint32()
					d.GID = &v
				}
			}
		}
		l.Sysctl = r.strMap()
		l.MaskedPaths = r.strs()
		l.ReadonlyPaths = r.strs()
		l.RootfsPropagation = r.str()
		s.Linux = l
	}
	return s
}
