package spec

import "time"

// Project is a loaded, validated and normalized stack. It is immutable by
// convention: functions that change a Project return a new value.
//
// Slices that hold named things (Services, Networks, Volumes, Secrets,
// Configs) are sorted by name so that everything built from a Project is
// deterministic.
type Project struct {
	// Name is the project name (-p, COMPOSE_PROJECT_NAME, top-level
	// name:, or the project directory's base name), normalized like
	// Compose: lower case, [a-z0-9_-].
	Name string `json:"name" yaml:"name"`
	// WorkingDir is the absolute project directory.
	WorkingDir string `json:"working_dir" yaml:"working_dir"`
	// ComposeFiles are the absolute paths of the files that were merged.
	ComposeFiles []string `json:"compose_files" yaml:"compose_files"`

	Services []Service `json:"services" yaml:"services"`
	Networks []Network `json:"networks,omitempty" yaml:"networks,omitempty"`
	Volumes  []Volume  `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	Secrets  []File    `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	Configs  []File    `json:"configs,omitempty" yaml:"configs,omitempty"`

	// Profiles lists every profile named by any service (enabled or not).
	Profiles []string `json:"profiles,omitempty" yaml:"profiles,omitempty"`
	// DisabledServices are services left out because none of their
	// profiles is active (or, with LoadOptions.SelectServices, because
	// they were not selected), sorted.
	DisabledServices []string `json:"-" yaml:"-"`

	// Warnings are human-readable notes about fields berth parsed but does
	// not act on, each naming the service and field, sorted, without
	// duplicates.
	Warnings []string `json:"-" yaml:"-"`
}

// Service is one compose service, normalized.
type Service struct {
	Name string `json:"name" yaml:"name"`

	Image      string `json:"image,omitempty" yaml:"image,omitempty"`
	Build      *Build `json:"build,omitempty" yaml:"build,omitempty"`
	PullPolicy string `json:"pull_policy,omitempty" yaml:"pull_policy,omitempty"` // always, missing, never, build, "" (= missing)
	Platform   string `json:"platform,omitempty" yaml:"platform,omitempty"`

	// Entrypoint and Command are nil when the image default applies and a
	// non-nil empty slice when explicitly reset to nothing.
	Entrypoint []string `json:"entrypoint,omitempty" yaml:"entrypoint,omitempty"`
	Command    []string `json:"command,omitempty" yaml:"command,omitempty"`
	// Environment is the resolved environment (env_file entries first,
	// then environment:), sorted "KEY=VALUE" strings. Variables declared
	// without a value and not found in the host environment are dropped.
	Environment []string          `json:"environment,omitempty" yaml:"environment,omitempty"`
	EnvFiles    []string          `json:"env_files,omitempty" yaml:"env_files,omitempty"` // absolute paths, for the config hash
	WorkingDir  string            `json:"working_dir,omitempty" yaml:"working_dir,omitempty"`
	User        string            `json:"user,omitempty" yaml:"user,omitempty"`
	GroupAdd    []string          `json:"group_add,omitempty" yaml:"group_add,omitempty"`
	Hostname    string            `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty" yaml:"domainname,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Tty         bool              `json:"tty,omitempty" yaml:"tty,omitempty"`
	StdinOpen   bool              `json:"stdin_open,omitempty" yaml:"stdin_open,omitempty"`

	// ContainerName is container_name; empty means PROJECT-SERVICE-N.
	ContainerName string `json:"container_name,omitempty" yaml:"container_name,omitempty"`
	// Replicas is scale / deploy.replicas (default 1; 0 is allowed).
	Replicas int      `json:"replicas" yaml:"replicas"`
	Profiles []string `json:"profiles,omitempty" yaml:"profiles,omitempty"`

	DependsOn   []Dependency `json:"depends_on,omitempty" yaml:"depends_on,omitempty"`
	Links       []string     `json:"links,omitempty" yaml:"links,omitempty"`               // "service" or "service:alias"
	VolumesFrom []string     `json:"volumes_from,omitempty" yaml:"volumes_from,omitempty"` // "service[:ro]" or "container:name[:ro]"

	// Networking.
	NetworkMode string           `json:"network_mode,omitempty" yaml:"network_mode,omitempty"` // "", host, none, service:X, container:X
	Networks    []ServiceNetwork `json:"networks,omitempty" yaml:"networks,omitempty"`         // sorted by name; empty with a non-bridge NetworkMode
	Ports       []Port           `json:"ports,omitempty" yaml:"ports,omitempty"`
	Expose      []string         `json:"expose,omitempty" yaml:"expose,omitempty"`
	DNS         []string         `json:"dns,omitempty" yaml:"dns,omitempty"`
	DNSSearch   []string         `json:"dns_search,omitempty" yaml:"dns_search,omitempty"`
	DNSOpt      []string         `json:"dns_opt,omitempty" yaml:"dns_opt,omitempty"`
	ExtraHosts  []string         `json:"extra_hosts,omitempty" yaml:"extra_hosts,omitempty"` // "host=ip" (ip may be host-gateway)
	MacAddress  string           `json:"mac_address,omitempty" yaml:"mac_address,omitempty"`

	// Storage.
	Mounts  []Mount   `json:"mounts,omitempty" yaml:"mounts,omitempty"` // volumes: (bind, volume, tmpfs) in declaration order
	Tmpfs   []string  `json:"tmpfs,omitempty" yaml:"tmpfs,omitempty"`   // "path[:opts]" from tmpfs:
	Secrets []FileRef `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	Configs []FileRef `json:"configs,omitempty" yaml:"configs,omitempty"`

	// Lifecycle.
	Restart         RestartPolicy `json:"restart" yaml:"restart"`
	Healthcheck     *Healthcheck  `json:"healthcheck,omitempty" yaml:"healthcheck,omitempty"`
	StopSignal      string        `json:"stop_signal,omitempty" yaml:"stop_signal,omitempty"`
	StopGracePeriod *Duration     `json:"stop_grace_period,omitempty" yaml:"stop_grace_period,omitempty"`
	Init            bool          `json:"init,omitempty" yaml:"init,omitempty"`
	PostStart       []Hook        `json:"post_start,omitempty" yaml:"post_start,omitempty"`
	PreStop         []Hook        `json:"pre_stop,omitempty" yaml:"pre_stop,omitempty"`
	Logging         *Logging      `json:"logging,omitempty" yaml:"logging,omitempty"`

	// Security.
	Privileged  bool     `json:"privileged,omitempty" yaml:"privileged,omitempty"`
	ReadOnly    bool     `json:"read_only,omitempty" yaml:"read_only,omitempty"`
	CapAdd      []string `json:"cap_add,omitempty" yaml:"cap_add,omitempty"`   // upper case, with CAP_ prefix, or ALL
	CapDrop     []string `json:"cap_drop,omitempty" yaml:"cap_drop,omitempty"` // upper case, with CAP_ prefix, or ALL
	SecurityOpt []string `json:"security_opt,omitempty" yaml:"security_opt,omitempty"`
	UsernsMode  string   `json:"userns_mode,omitempty" yaml:"userns_mode,omitempty"`
	PidMode     string   `json:"pid,omitempty" yaml:"pid,omitempty"`
	IpcMode     string   `json:"ipc,omitempty" yaml:"ipc,omitempty"`

	// Resources and kernel knobs.
	Resources Resources         `json:"resources" yaml:"resources"`
	Ulimits   []Ulimit          `json:"ulimits,omitempty" yaml:"ulimits,omitempty"` // sorted by name
	Sysctls   map[string]string `json:"sysctls,omitempty" yaml:"sysctls,omitempty"`
	ShmSize   int64             `json:"shm_size,omitempty" yaml:"shm_size,omitempty"` // bytes; 0 = default (64 MiB)
	Devices   []Device          `json:"devices,omitempty" yaml:"devices,omitempty"`

	Develop *Develop `json:"develop,omitempty" yaml:"develop,omitempty"`

	// Extensions holds the service's x-berth extension, decoded, if any.
	Extensions *BerthExtension `json:"x-berth,omitempty" yaml:"x-berth,omitempty"`
}

// Build is a service's build: section.
type Build struct {
	Context            string            `json:"context" yaml:"context"` // absolute path
	Dockerfile         string            `json:"dockerfile,omitempty" yaml:"dockerfile,omitempty"`
	DockerfileInline   string            `json:"dockerfile_inline,omitempty" yaml:"dockerfile_inline,omitempty"`
	Args               map[string]string `json:"args,omitempty" yaml:"args,omitempty"`
	Target             string            `json:"target,omitempty" yaml:"target,omitempty"`
	Labels             map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Tags               []string          `json:"tags,omitempty" yaml:"tags,omitempty"`
	NoCache            bool              `json:"no_cache,omitempty" yaml:"no_cache,omitempty"`
	Pull               bool              `json:"pull,omitempty" yaml:"pull,omitempty"`
	AdditionalContexts map[string]string `json:"additional_contexts,omitempty" yaml:"additional_contexts,omitempty"`
	ShmSize            int64             `json:"shm_size,omitempty" yaml:"shm_size,omitempty"`
	Network            string            `json:"network,omitempty" yaml:"network,omitempty"`
}

// Dependency conditions, as in the Compose Specification.
const (
	ConditionStarted               = "service_started"
	ConditionHealthy               = "service_healthy"
	ConditionCompletedSuccessfully = "service_completed_successfully"
)

// Dependency is one depends_on entry.
type Dependency struct {
	Service   string `json:"service" yaml:"service"`
	Condition string `json:"condition" yaml:"condition"` // one of the Condition constants
	Required  bool   `json:"required" yaml:"required"`   // default true
	Restart   bool   `json:"restart,omitempty" yaml:"restart,omitempty"`
}

// ServiceNetwork is a service's attachment to one project network.
type ServiceNetwork struct {
	Name        string   `json:"name" yaml:"name"` // key in the project's networks
	Aliases     []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	IPv4Address string   `json:"ipv4_address,omitempty" yaml:"ipv4_address,omitempty"`
	IPv6Address string   `json:"ipv6_address,omitempty" yaml:"ipv6_address,omitempty"`
	MacAddress  string   `json:"mac_address,omitempty" yaml:"mac_address,omitempty"`
	Priority    int      `json:"priority,omitempty" yaml:"priority,omitempty"`
	GwPriority  int      `json:"gw_priority,omitempty" yaml:"gw_priority,omitempty"`
}

// Port is one published port, expanded: a range in the file becomes one
// Port per container port.
type Port struct {
	Name      string `json:"name,omitempty" yaml:"name,omitempty"`
	Target    uint16 `json:"target" yaml:"target"`
	Published string `json:"published,omitempty" yaml:"published,omitempty"` // "8080", "8080-8081" or "" (ephemeral)
	HostIP    string `json:"host_ip,omitempty" yaml:"host_ip,omitempty"`
	Protocol  string `json:"protocol" yaml:"protocol"` // tcp or udp
	Mode      string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// Mount types.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

// Mount is one entry of a service's volumes:.
type Mount struct {
	Type   string `json:"type" yaml:"type"`                         // bind, volume, tmpfs
	Source string `json:"source,omitempty" yaml:"source,omitempty"` // absolute host path (bind), volume key (volume; empty = anonymous)
	Target string `json:"target" yaml:"target"`
	// ReadOnly is set by ":ro" or read_only: true.
	ReadOnly bool `json:"read_only,omitempty" yaml:"read_only,omitempty"`
	// Bind options.
	CreateHostPath bool   `json:"create_host_path,omitempty" yaml:"create_host_path,omitempty"`
	Propagation    string `json:"propagation,omitempty" yaml:"propagation,omitempty"`
	SELinux        string `json:"selinux,omitempty" yaml:"selinux,omitempty"`
	// Volume options.
	NoCopy  bool   `json:"nocopy,omitempty" yaml:"nocopy,omitempty"`
	Subpath string `json:"subpath,omitempty" yaml:"subpath,omitempty"`
	// Tmpfs options.
	TmpfsSize int64  `json:"tmpfs_size,omitempty" yaml:"tmpfs_size,omitempty"` // bytes, 0 = unlimited
	TmpfsMode uint32 `json:"tmpfs_mode,omitempty" yaml:"tmpfs_mode,omitempty"` // 0 = 01777
}

// FileRef is a service's use of a secret or config.
type FileRef struct {
	Source string  `json:"source" yaml:"source"` // key in the project's secrets/configs
	Target string  `json:"target" yaml:"target"` // absolute path in the container
	UID    string  `json:"uid,omitempty" yaml:"uid,omitempty"`
	GID    string  `json:"gid,omitempty" yaml:"gid,omitempty"`
	Mode   *uint32 `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// File is a top-level secret or config definition.
type File struct {
	Name         string `json:"name" yaml:"name"`                                       // key
	ExternalName string `json:"external_name,omitempty" yaml:"external_name,omitempty"` // name:
	File         string `json:"file,omitempty" yaml:"file,omitempty"`                   // absolute path
	Environment  string `json:"environment,omitempty" yaml:"environment,omitempty"`     // variable name
	Content      string `json:"content,omitempty" yaml:"content,omitempty"`
	// EnvironmentValue is the value of Environment when the stack was
	// loaded (the secret itself): never printed, but part of the config
	// hash and what the container gets.
	EnvironmentValue string            `json:"-" yaml:"-"`
	External         bool              `json:"external,omitempty" yaml:"external,omitempty"`
	Labels           map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Network is a top-level network definition (the implicit "default"
// network included when some service uses it).
type Network struct {
	Name       string            `json:"name" yaml:"name"`               // key in the file
	ActualName string            `json:"actual_name" yaml:"actual_name"` // name: or PROJECT_KEY
	Driver     string            `json:"driver,omitempty" yaml:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty" yaml:"driver_opts,omitempty"`
	Internal   bool              `json:"internal,omitempty" yaml:"internal,omitempty"`
	External   bool              `json:"external,omitempty" yaml:"external,omitempty"`
	EnableIPv6 bool              `json:"enable_ipv6,omitempty" yaml:"enable_ipv6,omitempty"`
	IPAM       []IPAMConfig      `json:"ipam,omitempty" yaml:"ipam,omitempty"`
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// IPAMConfig is one ipam.config entry.
type IPAMConfig struct {
	Subnet  string `json:"subnet,omitempty" yaml:"subnet,omitempty"`
	IPRange string `json:"ip_range,omitempty" yaml:"ip_range,omitempty"`
	Gateway string `json:"gateway,omitempty" yaml:"gateway,omitempty"`
}

// Volume is a top-level named volume definition.
type Volume struct {
	Name       string            `json:"name" yaml:"name"`               // key in the file
	ActualName string            `json:"actual_name" yaml:"actual_name"` // name: or PROJECT_KEY
	Driver     string            `json:"driver,omitempty" yaml:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty" yaml:"driver_opts,omitempty"`
	External   bool              `json:"external,omitempty" yaml:"external,omitempty"`
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// RestartPolicy merges restart: and deploy.restart_policy.
type RestartPolicy struct {
	// Condition is "no", "always", "on-failure" or "unless-stopped".
	Condition   string    `json:"condition" yaml:"condition"`
	MaxAttempts int       `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"` // 0 = unlimited
	Delay       *Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	Window      *Duration `json:"window,omitempty" yaml:"window,omitempty"`
}

// Healthcheck is a service's (or later, an image's) health check.
type Healthcheck struct {
	// Test is the probe: ["CMD", args...], ["CMD-SHELL", cmd] or ["NONE"].
	Test          []string  `json:"test,omitempty" yaml:"test,omitempty"`
	Disable       bool      `json:"disable,omitempty" yaml:"disable,omitempty"`
	Interval      *Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	Timeout       *Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	StartPeriod   *Duration `json:"start_period,omitempty" yaml:"start_period,omitempty"`
	StartInterval *Duration `json:"start_interval,omitempty" yaml:"start_interval,omitempty"`
	Retries       *int      `json:"retries,omitempty" yaml:"retries,omitempty"`
}

// Hook is a post_start or pre_stop lifecycle hook.
type Hook struct {
	Command     []string `json:"command" yaml:"command"`
	User        string   `json:"user,omitempty" yaml:"user,omitempty"`
	Privileged  bool     `json:"privileged,omitempty" yaml:"privileged,omitempty"`
	WorkingDir  string   `json:"working_dir,omitempty" yaml:"working_dir,omitempty"`
	Environment []string `json:"environment,omitempty" yaml:"environment,omitempty"`
}

// Logging is a service's logging: section.
type Logging struct {
	Driver  string            `json:"driver,omitempty" yaml:"driver,omitempty"`
	Options map[string]string `json:"options,omitempty" yaml:"options,omitempty"`
}

// Resources gathers the service's limits and reservations from both the
// top-level service keys and deploy.resources (deploy wins where both are
// set, as in Compose).
type Resources struct {
	NanoCPUs          int64  `json:"nano_cpus,omitempty" yaml:"nano_cpus,omitempty"` // cpus * 1e9
	CPUShares         int64  `json:"cpu_shares,omitempty" yaml:"cpu_shares,omitempty"`
	CPUPeriod         int64  `json:"cpu_period,omitempty" yaml:"cpu_period,omitempty"`
	CPUQuota          int64  `json:"cpu_quota,omitempty" yaml:"cpu_quota,omitempty"`
	CpusetCPUs        string `json:"cpuset,omitempty" yaml:"cpuset,omitempty"`
	MemoryLimit       int64  `json:"mem_limit,omitempty" yaml:"mem_limit,omitempty"`             // bytes
	MemorySwap        int64  `json:"memswap_limit,omitempty" yaml:"memswap_limit,omitempty"`     // bytes, -1 = unlimited
	MemoryReservation int64  `json:"mem_reservation,omitempty" yaml:"mem_reservation,omitempty"` // bytes
	MemSwappiness     *int64 `json:"mem_swappiness,omitempty" yaml:"mem_swappiness,omitempty"`
	PidsLimit         int64  `json:"pids_limit,omitempty" yaml:"pids_limit,omitempty"` // 0 = unset, -1 = unlimited
	OomKillDisable    bool   `json:"oom_kill_disable,omitempty" yaml:"oom_kill_disable,omitempty"`
	OomScoreAdj       int    `json:"oom_score_adj,omitempty" yaml:"oom_score_adj,omitempty"`
}

// Ulimit is one ulimits entry.
type Ulimit struct {
	Name string `json:"name" yaml:"name"` // e.g. "nofile"
	Soft int64  `json:"soft" yaml:"soft"`
	Hard int64  `json:"hard" yaml:"hard"`
}

// Device is one devices entry ("/dev/x[:/dev/y[:rwm]]").
type Device struct {
	Source      string `json:"source" yaml:"source"`
	Target      string `json:"target" yaml:"target"`
	Permissions string `json:"permissions" yaml:"permissions"`
}

// Develop is a service's develop: section.
type Develop struct {
	Watch []WatchRule `json:"watch,omitempty" yaml:"watch,omitempty"`
}

// WatchRule is one develop.watch entry.
type WatchRule struct {
	Path        string   `json:"path" yaml:"path"` // absolute host path
	Target      string   `json:"target,omitempty" yaml:"target,omitempty"`
	Action      string   `json:"action" yaml:"action"` // sync, sync+restart, sync+exec, restart, rebuild
	Ignore      []string `json:"ignore,omitempty" yaml:"ignore,omitempty"`
	Include     []string `json:"include,omitempty" yaml:"include,omitempty"`
	InitialSync bool     `json:"initial_sync,omitempty" yaml:"initial_sync,omitempty"`
	ExecCommand []string `json:"exec_command,omitempty" yaml:"exec_command,omitempty"`
}

// BerthExtension is the x-berth extension of a service: behaviour beyond
// Compose.
type BerthExtension struct {
	// RestartOnUnhealthy restarts a container that turns unhealthy, with
	// the restart policy's backoff, at most UnhealthyRestartLimit times
	// (0 = unlimited).
	RestartOnUnhealthy    bool `json:"restart_on_unhealthy,omitempty" yaml:"restart_on_unhealthy,omitempty"`
	UnhealthyRestartLimit int  `json:"unhealthy_restart_limit,omitempty" yaml:"unhealthy_restart_limit,omitempty"`
}

// Duration is a time.Duration that prints as Compose writes durations
// ("1m30s") in YAML and JSON.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Service returns the named service and true, or false when absent.
func (p *Project) Service(name string) (*Service, bool) {
	for i := range p.Services {
		if p.Services[i].Name == name {
			return &p.Services[i], true
		}
	}
	return nil, false
}
