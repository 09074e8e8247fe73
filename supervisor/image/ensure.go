package image

import (
	"context"
	"errors"
	"fmt"
)

// Pull policies, as in Compose's pull_policy.
const (
	PullAlways  = "always"
	PullMissing = "missing" // also "" and "if_not_present"
	PullNever   = "never"
	PullBuild   = "build"
)

// Ensure returns the image ref names, pulling it as policy says: always
// pulls; missing (the default) pulls only when the store has no image by
// that name for the wanted platform; never only looks in the store (an
// absent image is an error wrapping ErrNotFound). berth does not build, so
// build is refused.
func (s *Store) Ensure(ctx context.Context, ref, policy string, opts PullOptions) (*Image, error) {
	switch policy {
	case PullAlways:
		return s.Pull(ctx, ref, opts)
	case "", PullMissing, "if_not_present":
		im, err := s.Get(ref)
		if err == nil && platformMatches(im.Platform, opts.Platform) {
			return im, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return s.Pull(ctx, ref, opts)
	case PullNever:
		im, err := s.Get(ref)
		if err != nil {
			return nil, fmt.Errorf("%w (pull_policy: never)", err)
		}
		return im, nil
	case PullBuild:
		return nil, fmt.Errorf("%s: pull_policy: build: berth does not build images (import or load it)", ref)
	}
	return nil, fmt.Errorf("unknown pull_policy %q (want always, missing, never or build)", policy)
}

// platformMatches reports whether a stored image's platform suits the
// wanted one ("" = linux/host arch). Images without a recorded platform
// match anything.
func platformMatches(have, want string) bool {
	if have == "" {
		return true
	}
	p, err := ParsePlatform(want)
	if err != nil {
		return false
	}
	w := platformString(p.OS, p.Architecture, p.Variant)
	return have == w || (p.Variant == "" && len(have) > len(w) && have[:len(w)+1] == w+"/")
}
