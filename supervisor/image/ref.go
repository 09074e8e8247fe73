package image

import (
	"fmt"
	"net"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ParseReference parses an image reference the way Docker does: short Docker
// Hub names get docker.io/library/ and :latest. Registries on loopback
// (localhost, 127.0.0.0/8, ::1) may be plain HTTP, as Docker allows.
func ParseReference(ref string) (name.Reference, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty image reference")
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	for _, c := range strings.Split(r.Context().RepositoryStr(), "/") {
		if c == "" {
			return nil, fmt.Errorf("invalid image reference %q: empty path component", ref)
		}
	}
	if isLoopbackRegistry(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
		}
	}
	return r, nil
}

func isLoopbackRegistry(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// NormalizeName returns the canonical stored form of a reference:
// docker.io/library/redis:latest for "redis", repo@sha256:... for digests.
func NormalizeName(ref string) (string, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	return canonical(r), nil
}

func canonical(r name.Reference) string {
	repo := repoName(r.Context())
	switch t := r.(type) {
	case name.Digest:
		return repo + "@" + t.DigestStr()
	case name.Tag:
		return repo + ":" + t.TagStr()
	}
	return r.Name()
}

// repoName spells Docker Hub as docker.io, as docker does in its output.
func repoName(repo name.Repository) string {
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + repo.RepositoryStr()
}

// ParsePlatform parses "os/arch[/variant]"; "" means linux and the host
// architecture.
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("invalid platform %q (want os/arch[/variant])", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func platformString(os, arch, variant string) string {
	if os == "" && arch == "" {
		return ""
	}
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}
