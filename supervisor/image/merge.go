package image

import (
	"sort"
	"strings"

	"github.com/berth-dev/berth/spec"
)

// Resolved is a container's process and metadata after a service's
// settings are laid over its image's config.
type Resolved struct {
	Entrypoint   []string
	Cmd          []string
	Args         []string // Entrypoint followed by Cmd: what runs
	Env          []string // KEY=value, image first, service entries replacing by key
	WorkingDir   string   // "/" when neither sets one
	User         string
	StopSignal   string // "" = SIGTERM
	Healthcheck  *spec.Healthcheck
	Labels       map[string]string
	ExposedPorts []string // "port/proto", sorted, image and service expose
	Volumes      []string // the image's VOLUME paths, sorted
}

// Resolve applies Compose's precedence to an image config and a service:
//   - entrypoint: the service's if set (even empty), else the image's; a
//     service entrypoint drops the image's Cmd, as in Docker;
//   - command: the service's if set (even empty), else the image's Cmd
//     (unless dropped above);
//   - environment: the image's Env, then the service's, replacing by key;
//   - working_dir, user, stop_signal: the service's if set, else the image's;
//   - healthcheck: disable or test NONE turns it off; otherwise each field
//     the service leaves unset comes from the image;
//   - labels: the image's, then the service's over them;
//   - exposed ports: the union of the image's and the service's expose.
//
// c may be nil (no image config).
func (c *Config) Resolve(svc *spec.Service) Resolved {
	if c == nil {
		c = &Config{}
	}
	r := Resolved{
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		WorkingDir: c.WorkingDir,
		User:       c.User,
		StopSignal: c.StopSignal,
		Volumes:    append([]string(nil), c.Volumes...),
	}
	if svc.Entrypoint != nil {
		r.Entrypoint = svc.Entrypoint
		r.Cmd = nil
	}
	if svc.Command != nil {
		r.Cmd = svc.Command
	}
	r.Args = append(append([]string{}, r.Entrypoint...), r.Cmd...)
	r.Env = mergeEnv(c.Env, svc.Environment)
	if svc.WorkingDir != "" {
		r.WorkingDir = svc.WorkingDir
	}
	if r.WorkingDir == "" {
		r.WorkingDir = "/"
	}
	if svc.User != "" {
		r.User = svc.User
	}
	if svc.StopSignal != "" {
		r.StopSignal = svc.StopSignal
	}
	r.Healthcheck = mergeHealth(c.Healthcheck, svc.Healthcheck)
	if len(c.Labels)+len(svc.Labels) > 0 {
		r.Labels = map[string]string{}
		for k, v := range c.Labels {
			r.Labels[k] = v
		}
		for k, v := range svc.Labels {
			r.Labels[k] = v
		}
	}
	ports := map[string]bool{}
	for _, p := range c.ExposedPorts {
		ports[p] = true
	}
	for _, p := range svc.Expose {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		ports[p] = true
	}
	for p := range ports {
		r.ExposedPorts = append(r.ExposedPorts, p)
	}
	sort.Strings(r.ExposedPorts)
	return r
}

func mergeEnv(image, service []string) []string {
	out := append([]string(nil), image...)
	idx := map[string]int{}
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		idx[k] = i
	}
	for _, e := range service {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := idx[k]; ok {
			out[i] = e
			continue
		}
		idx[k] = len(out)
		out = append(out, e)
	}
	return out
}

func mergeHealth(img *Healthcheck, svc *spec.Healthcheck) *spec.Healthcheck {
	if svc != nil && (svc.Disable || (len(svc.Test) > 0 && svc.Test[0] == "NONE")) {
		return nil
	}
	var out spec.Healthcheck
	if svc != nil {
		out = *svc
	}
	if img != nil {
		if len(out.Test) == 0 {
			out.Test = img.Test
		}
		dur := func(p **spec.Duration, v int64) {
			if *p == nil && v > 0 {
				d := spec.Duration(v)
				*p = &d
			}
		}
		dur(&out.Interval, int64(img.Interval))
		dur(&out.Timeout, int64(img.Timeout))
		dur(&out.StartPeriod, int64(img.StartPeriod))
		dur(&out.StartInterval, int64(img.StartInterval))
		if out.Retries == nil && img.Retries > 0 {
			n := img.Retries
			out.Retries = &n
		}
	}
	if len(out.Test) == 0 || out.Test[0] == "NONE" {
		return nil
	}
	return &out
}
