package image

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestEnsurePullPolicy(t *testing.T) {
	reg := newTestRegistry(t, nil)
	img1 := randomImage(t, 100, 1)
	reg.push(t, reg.ref("p:1"), img1)
	s := openTestStore(t)
	ctx := context.Background()
	o := PullOptions{Keychain: anon}
	if _, err := s.Ensure(ctx, reg.ref("p:1"), PullNever, o); !errors.Is(err, ErrNotFound) {
		t.Fatalf("never, absent: %v", err)
	}
	im, err := s.Ensure(ctx, reg.ref("p:1"), "", o)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := img1.ConfigName()
	if im.ID != id1.String() {
		t.Fatal("missing: wrong image")
	}
	// The tag moves in the registry: missing keeps the stored image,
	// always fetches the new one.
	img2 := randomImage(t, 100, 1)
	reg.push(t, reg.ref("p:1"), img2)
	if im, err = s.Ensure(ctx, reg.ref("p:1"), PullMissing, o); err != nil || im.ID != id1.String() {
		t.Fatalf("missing, present: %v %v", im, err)
	}
	if im, err = s.Ensure(ctx, reg.ref("p:1"), PullNever, o); err != nil || im.ID != id1.String() {
		t.Fatalf("never, present: %v %v", im, err)
	}
	id2, _ := img2.ConfigName()
	if im, err = s.Ensure(ctx, reg.ref("p:1"), PullAlways, o); err != nil || im.ID != id2.String() {
		t.Fatalf("always: %v %v", im, err)
	}
	if _, err := s.Ensure(ctx, reg.ref("p:1"), PullBuild, o); err == nil {
		t.Fatal("build accepted")
	}
	if _, err := s.Ensure(ctx, reg.ref("p:1"), "sometimes", o); err == nil {
		t.Fatal("bad policy accepted")
	}
	// A stored image for another platform is pulled again for this one.
	cf, _ := img1.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "riscv64"
	rv, _ := mutate.ConfigFile(img1, cf)
	reg.push(t, reg.ref("plat:1"), rv)
	o.Platform = "linux/riscv64"
	if _, err := s.Ensure(ctx, reg.ref("plat:1"), "", o); err != nil {
		t.Fatal(err)
	}
	o.Platform = "linux/s390x"
	if _, err := s.Ensure(ctx, reg.ref("plat:1"), "", o); err == nil || !strings.Contains(err.Error(), "linux/riscv64") {
		t.Fatalf("single-platform image pulled for another platform: %v", err)
	}
	if !platformMatches("linux/riscv64", "linux/riscv64") || platformMatches("linux/riscv64", "linux/s390x") ||
		!platformMatches("linux/arm64/v8", "linux/arm64") || platformMatches("linux/arm/v6", "linux/arm/v7") {
		t.Fatal("platformMatches")
	}
}
