package runtime

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/supervisor/runtime/seccomp"
)

// The runtime compiles a container's seccomp profile and hands the init
// the program, which the init only installs: every container of a stack
// usually has the same profile, and the cache below compiles it once,
// where each init would compile it again (and decode the whole profile
// from its config first).

// seccompProgram is a compiled profile as the init receives it.
type seccompProgram struct {
	Prog  []byte // seccomp.Filter.MarshalBinary
	Flags uint
}

var seccompCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*seccompProgram
}

// maxSeccompCache bounds the cache; past it, it starts over.
const maxSeccompCache = 32

// compileSeccomp compiles cfg (nil: unconfined, no program).
func compileSeccomp(cfg *specs.LinuxSeccomp) (*seccompProgram, error) {
	if cfg == nil {
		return nil, nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(b)
	seccompCache.mu.Lock()
	p, ok := seccompCache.m[key]
	seccompCache.mu.Unlock()
	if ok {
		return p, nil
	}
	f, err := seccomp.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	prog, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	p = &seccompProgram{Prog: prog, Flags: f.Flags}
	seccompCache.mu.Lock()
	if seccompCache.m == nil || len(seccompCache.m) >= maxSeccompCache {
		seccompCache.m = map[[sha256.Size]byte]*seccompProgram{}
	}
	seccompCache.m[key] = p
	seccompCache.mu.Unlock()
	return p, nil
}

// installSeccomp installs a compiled program (nil: none) on the calling
// process, as late before execve as the privileges allow.
func installSeccomp(p *seccompProgram) error {
	if p == nil {
		return nil
	}
	f := &seccomp.Filter{Flags: p.Flags}
	if err := f.UnmarshalBinary(p.Prog); err != nil {
		return err
	}
	return f.Install() // its errors say "seccomp: ..." already
}
