package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Config is what the runtime takes from an image's config: the defaults a
// compose service overrides (Compose's precedence: a service's entrypoint
// replaces the image's and clears its Cmd; a service's command replaces
// Cmd; environment entries are added over Env by name).
type Config struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string // KEY=value
	WorkingDir   string
	User         string
	ExposedPorts []string // "80/tcp", sorted
	Volumes      []string // container paths, sorted
	StopSignal   string
	Healthcheck  *Healthcheck
	Labels       map[string]string
	OS           string
	Architecture string
}

// Healthcheck is an image's HEALTHCHECK. Zero durations mean "inherit the
// default".
type Healthcheck struct {
	Test          []string // ["CMD", ...], ["CMD-SHELL", cmd], ["NONE"]
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	Retries       int
}

// Config reads a stored image's config.
func (s *Store) Config(img *Image) (*Config, error) {
	raw, err := s.readBlob(img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.ShortID(), err)
	}
	cf, err := v1.ParseConfigFile(bytesReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.ShortID(), err)
	}
	c := configFrom(cf)
	// go-containerregistry's HealthConfig lacks StartInterval.
	var extra struct {
		Config struct {
			Healthcheck *struct{ StartInterval time.Duration }
		} `json:"config"`
	}
	if c.Healthcheck != nil && json.Unmarshal(raw, &extra) == nil && extra.Config.Healthcheck != nil {
		c.Healthcheck.StartInterval = extra.Config.Healthcheck.StartInterval
	}
	return c, nil
}

// RawConfig returns a stored image's config JSON as stored.
func (s *Store) RawConfig(img *Image) ([]byte, error) { return s.readBlob(img.ID) }

// RawManifest returns a stored image's manifest JSON as stored.
func (s *Store) RawManifest(img *Image) ([]byte, error) { return s.readBlob(img.Manifest) }

func configFrom(cf *v1.ConfigFile) *Config {
	c := cf.Config
	out := &Config{
		Entrypoint:   c.Entrypoint,
		Cmd:          c.Cmd,
		Env:          c.Env,
		WorkingDir:   c.WorkingDir,
		User:         c.User,
		StopSignal:   c.StopSignal,
		Labels:       c.Labels,
		OS:           cf.OS,
		Architecture: cf.Architecture,
	}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	sort.Strings(out.ExposedPorts)
	for v := range c.Volumes {
		out.Volumes = append(out.Volumes, v)
	}
	sort.Strings(out.Volumes)
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &Healthcheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	return out
}
