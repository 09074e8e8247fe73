package runtime

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor/runtime/cgroups"
	"github.com/berth-dev/berth/supervisor/runtime/initbin"
)

// The C init (cinit/cinit.c, embedded as initbin.CBinary) starts the
// common container: no user namespace, no terminal, no hooks that run
// inside the container or between its mounts. It does what
// the Go init does for such a container, without starting a Go runtime
// (threads, a heap and ~190 page faults, which cost an up of 50 services
// more CPU than their mounts). As the reaper of `init: true` it stays
// pid 1 with 0.7 MiB resident (0.1 of it its own) where the Go reaper
// holds 3.5, and with no fd but stdio. It runs execs too (health probes,
// hooks, berth exec without a terminal), the nsenter code linked in. The
// others keep the Go inits.
//
// The C init decides nothing: encodeCInit below walks the container's
// setup as setupRootfs and finishProcess do and writes each step with its
// arguments worked out (flags, options, the cgroup hierarchies, the
// capability masks), and the C program carries the steps out. Whatever
// the C init would word differently from the Go init (an unknown
// capability, rlimit or device type, a relative mount destination, a NUL
// in a string) goes to the Go init, which reports it as before.

// cinitBinary is the C init (tests set it to one they built).
var cinitBinary = initbin.CBinary

var sealedCInit sealedExe

// cinitExe is the sealed copy of the C init, or nil when this build has
// none.
func cinitExe() (*os.File, error) {
	if len(cinitBinary) == 0 {
		return nil, nil
	}
	return sealedCInit.load("berth-cinit", cinitBinary, initbin.CBinary)
}

// cinitFor returns the C init and its program for cfg (a create or an
// exec), or nils when cfg needs a Go init or this build has no C init.
func cinitFor(cfg *initConfig) (exe *os.File, prog []byte, err error) {
	var ok bool
	if cfg.Mode == "exec" {
		prog, ok = encodeCInitExec(cfg)
	} else {
		prog, ok = encodeCInit(cfg)
	}
	if !ok {
		return nil, nil, nil
	}
	if exe, err = cinitExe(); exe == nil || err != nil {
		return nil, nil, err
	}
	return exe, prog, nil
}

const cinitMagic = "berth-cinit/1\n"

// What the program starts (cinit.c's MODE_*).
const (
	cinitCreate = 1 // a container
	cinitExec   = 2 // a process joining one (Exec)
)

// Mount steps of the program (cinit.c's OP_*).
const (
	cinitFS       = 1 // mountOne for a filesystem
	cinitBind     = 2 // bindMount
	cinitCgroup   = 3 // mountCgroup
	cinitSetupDev = 4 // setupDev
	cinitDevice   = 5 // createDevice
)

// cinitWriter is the init wire's writer that also notes strings the C
// init cannot carry (a NUL ends a C string).
type cinitWriter struct {
	wireWriter
	nul bool
}

func (w *cinitWriter) str(s string) {
	if strings.IndexByte(s, 0) >= 0 {
		w.nul = true
	}
	w.wireWriter.str(s)
}

func (w *cinitWriter) strs(v []string) {
	w.uint(uint64(len(v)))
	for _, s := range v {
		w.str(s)
	}
}

func (w *cinitWriter) uints(v []uintptr) {
	w.uint(uint64(len(v)))
	for _, x := range v {
		w.uint(uint64(x))
	}
}

// encodeCInit compiles cfg into the C init's program; ok is false when
// the container needs the Go init.
func encodeCInit(cfg *initConfig) (prog []byte, ok bool) {
	spec, p := cfg.Spec, cfg.Process
	if cfg.Mode != "create" || spec == nil || spec.Root == nil || spec.Linux == nil || p == nil ||
		cfg.NewUserNS || cfg.RuntimeHooks || p.Terminal || len(p.Args) == 0 || cfg.CgroupMounts == nil {
		return nil, false
	}
	if h := spec.Hooks; h != nil && len(h.CreateContainer)+len(h.StartContainer) > 0 {
		return nil, false
	}
	w := newCInitWriter(cinitCreate)

	// initMain, before the root filesystem. Being one thread, the C init
	// joins its cgroups by itself wherever they allow it, as the reaper
	// too (Create sets JoinCgroups to match).
	var join []string
	if cgroups.ThreadJoinable(cfg.CgroupPaths) {
		join = cgroups.JoinDirs(cfg.CgroupPaths)
	}
	w.strs(join)
	w.bool(cfg.NewCgroupNS)
	w.str(spec.Hostname)
	w.str(spec.Domainname)
	w.str(cfg.Rootfs)

	// setupRootfs: the mounts, /dev and the devices, as steps.
	l := spec.Linux
	fresh := freshDev(spec.Mounts)
	steps := len(spec.Mounts) + len(l.Devices)
	if fresh {
		steps++
	}
	w.uint(uint64(steps))
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		plan, err := planMount(m)
		if err != nil {
			return nil, false
		}
		opts := plan.opts
		switch plan.kind {
		case mountBind:
			w.uint(cinitBind)
			w.str(m.Destination)
			w.str(plan.dest)
			w.str(m.Source)
			w.bool(plan.noSymlinks)
			w.uint(uint64(unix.MS_BIND | opts.flags&unix.MS_REC))
			w.uint(uint64(opts.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)))
			w.uints(opts.propagation)
		case mountCgroups:
			hier := cfg.CgroupMounts
			unified := unifiedCgroupOnly(hier)
			if unified {
				hier = nil
			}
			w.uint(cinitCgroup)
			w.str(m.Destination)
			w.str(plan.dest)
			w.bool(plan.noSymlinks)
			w.uint(uint64(opts.flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC))
			w.bool(opts.readonly)
			w.bool(unified)
			w.uint(uint64(len(hier)))
			for _, h := range hier {
				w.str(filepath.Base(h.Mountpoint))
				w.str(h.FSType)
				w.str(h.Options)
			}
		default:
			w.uint(cinitFS)
			w.str(m.Destination)
			w.str(plan.dest)
			w.str(m.Source)
			w.str(m.Type)
			w.uint(uint64(opts.flags))
			w.str(opts.dataString())
			w.uint(plan.resolve())
			w.bool(plan.noSymlinks)
			w.bool(m.Type == "sysfs")
			w.uints(opts.propagation)
		}
	}
	if fresh {
		w.uint(cinitSetupDev)
		w.str("")
	}
	for _, d := range l.Devices {
		typ, ok := deviceTypes[d.Type]
		if !ok {
			return nil, false
		}
		perm := uint32(0o666)
		if d.FileMode != nil {
			perm = uint32(d.FileMode.Perm())
		}
		uid, gid := int64(-1), int64(-1)
		if d.UID != nil {
			uid = int64(*d.UID)
		}
		if d.GID != nil {
			gid = int64(*d.GID)
		}
		w.uint(cinitDevice)
		w.str(d.Path)
		w.str(filepath.Clean("/" + d.Path))
		w.uint(uint64(typ))
		w.uint(uint64(perm))
		w.uint(uint64(uint32(d.Major)))
		w.uint(uint64(uint32(d.Minor)))
		w.int(uid)
		w.int(gid)
	}

	// After pivot_root.
	keys := slices.Sorted(maps.Keys(l.Sysctl))
	w.uint(uint64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(sysctlPath(k))
		w.str(l.Sysctl[k])
	}
	w.strs(l.MaskedPaths)
	w.strs(l.ReadonlyPaths)
	var prop uintptr
	if l.RootfsPropagation != "" {
		f, ok := propagationTable[l.RootfsPropagation]
		if !ok {
			return nil, false
		}
		prop = f
	}
	w.uint(uint64(prop))
	w.bool(spec.Root.Readonly)
	return w.finish(cfg)
}

// encodeCInitExec compiles an exec; ok is false when it needs the Go
// init (a terminal, a user namespace, or what encodeCInit leaves to it).
func encodeCInitExec(cfg *initConfig) (prog []byte, ok bool) {
	if p := cfg.Process; cfg.Mode != "exec" || p == nil || p.Terminal || len(p.Args) == 0 || cfg.NewUserNS {
		return nil, false
	}
	return newCInitWriter(cinitExec).finish(cfg)
}

func newCInitWriter(mode uint64) *cinitWriter {
	w := &cinitWriter{wireWriter: wireWriter{b: make([]byte, 0, 4096)}}
	w.b = append(w.b, cinitMagic...)
	w.uint(mode)
	return w
}

// finish writes finishProcess's part and returns the program.
func (w *cinitWriter) finish(cfg *initConfig) (prog []byte, ok bool) {
	p := cfg.Process
	w.uint(uint64(len(p.Rlimits)))
	for _, r := range p.Rlimits {
		res, ok := rlimitNames[r.Type]
		if !ok {
			return nil, false
		}
		w.str(r.Type)
		w.uint(uint64(res))
		w.uint(r.Soft)
		w.uint(r.Hard)
	}
	if w.present(p.OOMScoreAdj != nil) {
		w.int(int64(*p.OOMScoreAdj))
	}
	w.str(userSpec(p))
	w.uint(uint64(len(p.User.AdditionalGids)))
	for _, g := range p.User.AdditionalGids {
		w.uint(uint64(g))
	}
	w.strs(p.Env)
	w.strs(p.Args)
	// All the masks: the init leaves out what its kernel does not know,
	// as capMask does with the init's cap_last_cap.
	var lists [5][]string
	if c := p.Capabilities; c != nil {
		lists = [5][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient}
	}
	for _, names := range lists {
		m, err := capMask(names, 63)
		if err != nil {
			return nil, false
		}
		w.uint(m)
	}
	if cfg.LastCap < 0 || cfg.LastCap > 63 {
		return nil, false
	}
	w.uint(uint64(cfg.LastCap))
	w.bool(p.NoNewPrivileges)
	if s := cfg.Seccomp; w.present(s != nil) {
		w.bytes(s.Prog)
		w.uint(uint64(s.Flags))
	}
	w.str(p.Cwd)
	w.uint(uint64(cfg.NumExtra))
	w.bool(cfg.Reaper)
	if w.nul {
		return nil, false
	}
	return w.b, true
}
