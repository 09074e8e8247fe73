package spec

import (
	"github.com/compose-spec/compose-go/v2/types"
)

// This file is the one place that lists the Compose fields berth parses
// but does not act on. Each one set in a stack produces one warning,
// `service "web": ignoring "gpus" (not supported)`; nothing is dropped
// silently. When berth learns a field, move it from here into the
// conversion in convert.go.

// unsupportedServiceFields are checked on every active service.
var unsupportedServiceFields = []struct {
	field string
	set   func(s *types.ServiceConfig) bool
}{
	{"annotations", func(s *types.ServiceConfig) bool { return len(s.Annotations) > 0 }},
	{"attach", func(s *types.ServiceConfig) bool { return s.Attach != nil }},
	{"blkio_config", func(s *types.ServiceConfig) bool { return s.BlkioConfig != nil }},
	{"cgroup", func(s *types.ServiceConfig) bool { return s.Cgroup != "" }},
	{"cgroup_parent", func(s *types.ServiceConfig) bool { return s.CgroupParent != "" }},
	{"cpu_count", func(s *types.ServiceConfig) bool { return s.CPUCount != 0 }},
	{"cpu_percent", func(s *types.ServiceConfig) bool { return s.CPUPercent != 0 }},
	{"cpu_rt_period", func(s *types.ServiceConfig) bool { return s.CPURTPeriod != 0 }},
	{"cpu_rt_runtime", func(s *types.ServiceConfig) bool { return s.CPURTRuntime != 0 }},
	{"credential_spec", func(s *types.ServiceConfig) bool { return s.CredentialSpec != nil }},
	{"device_cgroup_rules", func(s *types.ServiceConfig) bool { return len(s.DeviceCgroupRules) > 0 }},
	{"external_links", func(s *types.ServiceConfig) bool { return len(s.ExternalLinks) > 0 }},
	{"gpus", func(s *types.ServiceConfig) bool { return len(s.Gpus) > 0 }},
	{"isolation", func(s *types.ServiceConfig) bool { return s.Isolation != "" }},
	{"models", func(s *types.ServiceConfig) bool { return len(s.Models) > 0 }},
	{"pre_start", func(s *types.ServiceConfig) bool { return len(s.PreStart) > 0 }},
	{"provider", func(s *types.ServiceConfig) bool { return s.Provider != nil }},
	{"pull_refresh_after", func(s *types.ServiceConfig) bool { return s.PullRefreshAfter != "" }},
	{"runtime", func(s *types.ServiceConfig) bool { return s.Runtime != "" }},
	{"storage_opt", func(s *types.ServiceConfig) bool { return len(s.StorageOpt) > 0 }},
	{"umask", func(s *types.ServiceConfig) bool { return s.Umask != nil }},
	{"use_api_socket", func(s *types.ServiceConfig) bool { return s.UseAPISocket }},
	{"uts", func(s *types.ServiceConfig) bool { return s.Uts != "" }},
	{"volume_driver", func(s *types.ServiceConfig) bool { return s.VolumeDriver != "" }},

	{"deploy.endpoint_mode", func(s *types.ServiceConfig) bool { return s.Deploy != nil && s.Deploy.EndpointMode != "" }},
	{"deploy.labels", func(s *types.ServiceConfig) bool { return s.Deploy != nil && len(s.Deploy.Labels) > 0 }},
	{"deploy.mode", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && s.Deploy.Mode != "" && s.Deploy.Mode != "replicated"
	}},
	{"deploy.placement", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && (len(s.Deploy.Placement.Constraints) > 0 || len(s.Deploy.Placement.Preferences) > 0 || s.Deploy.Placement.MaxReplicas != 0)
	}},
	{"deploy.rollback_config", func(s *types.ServiceConfig) bool { return s.Deploy != nil && s.Deploy.RollbackConfig != nil }},
	{"deploy.update_config", func(s *types.ServiceConfig) bool { return s.Deploy != nil && s.Deploy.UpdateConfig != nil }},
	{"deploy.resources.limits.devices", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && s.Deploy.Resources.Limits != nil && len(s.Deploy.Resources.Limits.Devices) > 0
	}},
	{"deploy.resources.limits.generic_resources", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && s.Deploy.Resources.Limits != nil && len(s.Deploy.Resources.Limits.GenericResources) > 0
	}},
	{"deploy.resources.reservations.cpus", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && s.Deploy.Resources.Reservations != nil && s.Deploy.Resources.Reservations.NanoCPUs != 0
	}},
	{"deploy.resources.reservations.devices", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && s.Deploy.Resources.Reservations != nil && len(s.Deploy.Resources.Reservations.Devices) > 0
	}},
	{"deploy.resources.reservations.generic_resources", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && s.Deploy.Resources.Reservations != nil && len(s.Deploy.Resources.Reservations.GenericResources) > 0
	}},
	{"deploy.resources.reservations.pids", func(s *types.ServiceConfig) bool {
		return s.Deploy != nil && s.Deploy.Resources.Reservations != nil && s.Deploy.Resources.Reservations.Pids != 0
	}},

	{"build.cache_from", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.CacheFrom) > 0 }},
	{"build.cache_to", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.CacheTo) > 0 }},
	{"build.entitlements", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.Entitlements) > 0 }},
	{"build.extra_hosts", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.ExtraHosts) > 0 }},
	{"build.isolation", func(s *types.ServiceConfig) bool { return s.Build != nil && s.Build.Isolation != "" }},
	{"build.no_cache_filter", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.NoCacheFilter) > 0 }},
	{"build.platforms", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.Platforms) > 0 }},
	{"build.privileged", func(s *types.ServiceConfig) bool { return s.Build != nil && s.Build.Privileged }},
	{"build.provenance", func(s *types.ServiceConfig) bool { return s.Build != nil && s.Build.Provenance != "" }},
	{"build.sbom", func(s *types.ServiceConfig) bool { return s.Build != nil && s.Build.SBOM != "" }},
	{"build.secrets", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.Secrets) > 0 }},
	{"build.ssh", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.SSH) > 0 }},
	{"build.ulimits", func(s *types.ServiceConfig) bool { return s.Build != nil && len(s.Build.Ulimits) > 0 }},

	{"networks.*.driver_opts", func(s *types.ServiceConfig) bool {
		return anyNetwork(s, func(n *types.ServiceNetworkConfig) bool { return len(n.DriverOpts) > 0 })
	}},
	{"networks.*.interface_name", func(s *types.ServiceConfig) bool {
		return anyNetwork(s, func(n *types.ServiceNetworkConfig) bool { return n.InterfaceName != "" })
	}},
	{"networks.*.link_local_ips", func(s *types.ServiceConfig) bool {
		return anyNetwork(s, func(n *types.ServiceNetworkConfig) bool { return len(n.LinkLocalIPs) > 0 })
	}},
	{"networks.*.use_service_name_alias", func(s *types.ServiceConfig) bool {
		return anyNetwork(s, func(n *types.ServiceNetworkConfig) bool { return n.UseServiceNameAlias != nil })
	}},
	{"ports[].app_protocol", func(s *types.ServiceConfig) bool {
		for _, p := range s.Ports {
			if p.AppProtocol != "" {
				return true
			}
		}
		return false
	}},
	{"volumes[].bind.recursive", func(s *types.ServiceConfig) bool {
		for _, v := range s.Volumes {
			if v.Bind != nil && v.Bind.Recursive != "" {
				return true
			}
		}
		return false
	}},
	{"volumes[].type (image, npipe, cluster)", func(s *types.ServiceConfig) bool {
		for _, v := range s.Volumes {
			if !supportedMountType(v.Type) {
				return true
			}
		}
		return false
	}},
	{"volumes[].volume.labels", func(s *types.ServiceConfig) bool {
		for _, v := range s.Volumes {
			if v.Volume != nil && len(v.Volume.Labels) > 0 {
				return true
			}
		}
		return false
	}},
}

func anyNetwork(s *types.ServiceConfig, f func(*types.ServiceNetworkConfig) bool) bool {
	for _, n := range s.Networks {
		if n != nil && f(n) {
			return true
		}
	}
	return false
}

// unsupportedTopLevel are checked on the project's networks, volumes,
// secrets and configs; kind is "network", "volume", "secret", "config".
var unsupportedTopLevel = []struct {
	kind, field string
	set         func(p *types.Project, name string) bool
}{
	{"network", "attachable", func(p *types.Project, n string) bool { return p.Networks[n].Attachable }},
	{"network", "enable_ipv4", func(p *types.Project, n string) bool { return p.Networks[n].EnableIPv4 != nil }},
	{"network", "ipam.driver", func(p *types.Project, n string) bool { return p.Networks[n].Ipam.Driver != "" }},
	{"network", "ipam.options", func(p *types.Project, n string) bool { return len(p.Networks[n].Ipam.Options) > 0 }},
	{"network", "ipam.config[].aux_addresses", func(p *types.Project, n string) bool {
		for _, c := range p.Networks[n].Ipam.Config {
			if c != nil && len(c.AuxiliaryAddresses) > 0 {
				return true
			}
		}
		return false
	}},
	{"secret", "driver", func(p *types.Project, n string) bool { return p.Secrets[n].Driver != "" }},
	{"secret", "driver_opts", func(p *types.Project, n string) bool { return len(p.Secrets[n].DriverOpts) > 0 }},
	{"secret", "template_driver", func(p *types.Project, n string) bool { return p.Secrets[n].TemplateDriver != "" }},
	{"config", "template_driver", func(p *types.Project, n string) bool { return p.Configs[n].TemplateDriver != "" }},
}

// unsupportedProjectKeys are top-level sections berth ignores as a whole.
var unsupportedProjectKeys = []struct {
	field string
	set   func(p *types.Project) bool
}{
	{"models", func(p *types.Project) bool { return len(p.Models) > 0 }},
	{"jobs", func(p *types.Project) bool { return len(p.Jobs) > 0 }},
}
