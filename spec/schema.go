package spec

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	str2duration "github.com/xhit/go-str2duration/v2"
	"gopkg.in/yaml.v3"
)

// This file is berth's own structural check of a stack file, run on the
// yaml.v3 node tree of each file before compose-go loads it. compose-go's
// own messages often lack the key path and never carry a line, so the
// common mistakes (unknown keys, wrong types, bad ports, durations, byte
// sizes, volume specs, enums) are caught here where the position is known.
// Whatever slips through is still caught by compose-go's schema.

// rule describes what a node may be. A nil rule accepts anything.
type rule struct {
	want   string              // for type errors: "a string", "a mapping"...
	scalar func(string) string // non-nil: scalars allowed; returns a complaint or ""
	keys   map[string]*rule    // non-nil: a mapping with these keys (and x-*)
	values *rule               // non-nil: a mapping with any keys, values per this rule
	items  *rule               // non-nil: a sequence, items per this rule
	keyOK  func(string) string // optional check on keys of a values-mapping
	str    bool                // the scalar must be a YAML string, not a number or boolean
	needs  []string            // keys a mapping must have
	// mapCheck runs on a mapping once its keys passed; it returns the key
	// to point at ("" for the mapping itself) and a complaint, or "", "".
	mapCheck func(n *yaml.Node) (key, msg string)
	// nullOK lets a scalar rule accept null (an environment variable
	// passed through, a label without value). Rules without a scalar form
	// always accept null (an empty section).
	nullOK bool
}

func anyScalar(string) string { return "" }

func checkBool(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "y", "n", "on", "off":
		return ""
	}
	return fmt.Sprintf("invalid boolean %q", s)
}

func checkInt(s string) string {
	if _, err := strconv.ParseInt(s, 0, 64); err != nil {
		return fmt.Sprintf("invalid integer %q", s)
	}
	return ""
}

func checkNumber(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return fmt.Sprintf("invalid number %q", s)
	}
	return ""
}

func checkDuration(s string) string {
	if _, err := str2duration.ParseDuration(s); err != nil {
		return fmt.Sprintf("invalid duration %q", s)
	}
	return ""
}

var bytesRE = regexp.MustCompile(`^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

func checkBytes(s string) string {
	if s == "-1" || bytesRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("invalid byte size %q", s)
}

func checkEnum(vals ...string) func(string) string {
	return func(s string) string {
		for _, v := range vals {
			if s == v {
				return ""
			}
		}
		return fmt.Sprintf("invalid value %q (want one of %s)", s, strings.Join(vals, ", "))
	}
}

func checkRestart(s string) string {
	switch {
	case s == "no", s == "always", s == "unless-stopped", s == "on-failure":
		return ""
	case strings.HasPrefix(s, "on-failure:"):
		if n, err := strconv.Atoi(strings.TrimPrefix(s, "on-failure:")); err == nil && n >= 0 {
			return ""
		}
	}
	return fmt.Sprintf("invalid restart policy %q (want no, always, on-failure[:N] or unless-stopped)", s)
}

// checkPortRange accepts "N" or "N-M" with 1 <= N <= M <= 65535 (or 0 for
// a host port); empty is allowed for host ports.
func portRange(s string, host bool) (lo, hi int, ok bool) {
	if s == "" {
		return 0, 0, host
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi = lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	min := 1
	if host {
		min = 0
	}
	if err1 != nil || err2 != nil || lo < min || hi > 65535 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

// checkPort validates the short port syntax:
// [[IP:][HOST_PORT[-END]]:]CONTAINER_PORT[-END][/PROTOCOL].
func checkPort(s string) string {
	bad := fmt.Sprintf("invalid port %q", s)
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto && proto != "tcp" && proto != "udp" && proto != "sctp" {
		return fmt.Sprintf("invalid port %q: unknown protocol %q", s, proto)
	}
	var ip, host, ctr string
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]")
		if end < 0 || !strings.HasPrefix(spec[end+1:], ":") {
			return bad
		}
		ip = spec[1:end]
		rest := strings.Split(spec[end+2:], ":")
		if len(rest) != 2 {
			return bad
		}
		host, ctr = rest[0], rest[1]
	} else {
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			ctr = parts[0]
		case 2:
			host, ctr = parts[0], parts[1]
		default:
			ip = strings.Join(parts[:len(parts)-2], ":")
			host, ctr = parts[len(parts)-2], parts[len(parts)-1]
		}
	}
	if ip != "" && net.ParseIP(ip) == nil {
		return bad
	}
	clo, chi, ok := portRange(ctr, false)
	if !ok {
		return bad
	}
	hlo, hhi, ok := portRange(host, true)
	if !ok {
		return bad
	}
	if host != "" && chi > clo && hhi-hlo != chi-clo {
		return fmt.Sprintf("invalid port %q: host and container port ranges differ in size", s)
	}
	return ""
}

var volumeModes = map[string]bool{
	"ro": true, "rw": true, "z": true, "Z": true, "nocopy": true,
	"consistent": true, "cached": true, "delegated": true,
	"shared": true, "rshared": true, "slave": true, "rslave": true, "private": true, "rprivate": true,
}

// checkVolume validates the short volume syntax: [SOURCE:]TARGET[:MODE].
func checkVolume(s string) string {
	parts := strings.Split(s, ":")
	bad := fmt.Sprintf("invalid volume %q", s)
	var target, mode string
	switch len(parts) {
	case 1:
		target = parts[0]
	case 2:
		target = parts[1]
	case 3:
		target, mode = parts[1], parts[2]
	default:
		return bad + ": too many colons"
	}
	if len(parts) > 1 && parts[0] == "" {
		return bad + ": empty source"
	}
	if !strings.HasPrefix(target, "/") {
		return fmt.Sprintf("invalid volume %q: target %q is not an absolute path", s, target)
	}
	if mode != "" {
		for _, m := range strings.Split(mode, ",") {
			if !volumeModes[m] {
				return fmt.Sprintf("invalid volume %q: unknown mode %q", s, m)
			}
		}
	}
	return ""
}

func checkOctal(s string) string {
	if _, err := strconv.ParseUint(s, 0, 32); err != nil {
		if _, err := strconv.ParseUint(s, 8, 32); err != nil {
			return fmt.Sprintf("invalid file mode %q", s)
		}
	}
	return ""
}

func checkDevice(s string) string {
	parts := strings.Split(s, ":")
	if len(parts) > 3 || !strings.HasPrefix(parts[0], "/") {
		return fmt.Sprintf("invalid device %q (want /dev/host[:/dev/container[:rwm]])", s)
	}
	perms := ""
	switch len(parts) {
	case 2:
		if !strings.HasPrefix(parts[1], "/") {
			perms = parts[1]
		}
	case 3:
		perms = parts[2]
	}
	if strings.Trim(perms, "rwm") != "" {
		return fmt.Sprintf("invalid device %q: permissions %q are not a combination of r, w and m", s, perms)
	}
	return ""
}

var everyRE = regexp.MustCompile(`^every_([0-9]+[wdhms])+$`)

func checkPullPolicy(s string) string {
	switch s {
	case "always", "never", "missing", "if_not_present", "build", "refresh", "daily", "weekly":
		return ""
	}
	if everyRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("invalid pull_policy %q (want always, never, missing, build, daily, weekly or every_<duration>)", s)
}

// scalarValue is the value of key in mapping n when it is a scalar.
func scalarValue(n *yaml.Node, key string) string {
	if _, v := mapGet(n, key); v != nil {
		if r := resolve(v); r.Kind == yaml.ScalarNode && r.Tag != "!!null" {
			return r.Value
		}
	}
	return ""
}

var serviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

func checkName(s string) string {
	if !serviceNameRE.MatchString(s) {
		return fmt.Sprintf("invalid name %q (use letters, digits, '.', '_' and '-')", s)
	}
	return ""
}

// Building blocks.
var (
	rAny        *rule
	rString     = &rule{want: "a string", scalar: anyScalar}
	rBool       = &rule{want: "a boolean", scalar: checkBool}
	rInt        = &rule{want: "an integer", scalar: checkInt}
	rNumber     = &rule{want: "a number", scalar: checkNumber}
	rDuration   = &rule{want: "a duration", scalar: checkDuration}
	rBytes      = &rule{want: "a byte size", scalar: checkBytes}
	rStringList = &rule{want: "a list of strings", items: rString}
	rStrOrList  = &rule{want: "a string or a list of strings", scalar: anyScalar, items: rString}
	// rPath is for names and paths: compose-go needs a string there.
	rPath       = &rule{want: "a string", scalar: anyScalar, str: true}
	rNullString = &rule{want: "a string", scalar: anyScalar, nullOK: true}
	rStringMap  = &rule{want: "a mapping", values: rNullString}
	rListOrMap  = &rule{want: "a mapping or a list of KEY=VALUE strings", values: rNullString, items: rString}
	// rStrictListOrMap is rListOrMap where every value must be given.
	rStrictListOrMap = &rule{want: "a mapping or a list of KEY=VALUE strings", values: rString, items: rString}
)

func obj(keys map[string]*rule) *rule { return &rule{want: "a mapping", keys: keys} }

var (
	rHook = obj(map[string]*rule{
		"command": rStrOrList, "user": rString, "privileged": rBool,
		"working_dir": rString, "environment": rListOrMap,
	})
	rUlimits = &rule{want: "a mapping", values: &rule{want: "an integer or a mapping with soft and hard", scalar: checkInt,
		keys: map[string]*rule{"soft": rInt, "hard": rInt}, needs: []string{"soft", "hard"}}}
	rResource = obj(map[string]*rule{
		"cpus": rNumber, "memory": rBytes, "pids": rInt, "devices": rAny, "generic_resources": rAny,
	})
	rDeploy = obj(map[string]*rule{
		"mode": rString, "replicas": rInt, "labels": rListOrMap, "endpoint_mode": rString,
		"resources":       obj(map[string]*rule{"limits": rResource, "reservations": rResource}),
		"restart_policy":  obj(map[string]*rule{"condition": {want: "a string", scalar: checkEnum("none", "on-failure", "any")}, "delay": rDuration, "max_attempts": rInt, "window": rDuration}),
		"placement":       rAny,
		"update_config":   rAny,
		"rollback_config": rAny,
	})
	rHealthcheck = obj(map[string]*rule{
		"test": rStrOrList, "interval": rDuration, "timeout": rDuration, "start_period": rDuration,
		"start_interval": rDuration, "retries": rInt, "disable": rBool,
	})
	rBuild = &rule{want: "a string or a mapping", scalar: anyScalar, keys: map[string]*rule{
		"context": rPath, "dockerfile": rPath, "dockerfile_inline": rString, "args": rListOrMap,
		"target": rString, "labels": rListOrMap, "tags": rStringList, "no_cache": rBool, "pull": rBool,
		"additional_contexts": rStrictListOrMap, "shm_size": rBytes, "network": rString,
		"cache_from": rStringList, "cache_to": rStringList, "entitlements": rStringList, "extra_hosts": rListOrMap,
		"isolation": rString, "no_cache_filter": rStrOrList, "platforms": rStringList, "privileged": rBool,
		"provenance": rAny, "sbom": rAny, "secrets": rAny, "ssh": rStrictListOrMap, "ulimits": rUlimits,
	}}
	rPortItem = &rule{want: "a port string or a mapping", scalar: checkPort, keys: map[string]*rule{
		"name": rString, "mode": {want: "a string", scalar: checkEnum("host", "ingress")}, "host_ip": rString,
		"target": rInt, "published": {want: "a port or port range", scalar: func(s string) string {
			if _, _, ok := portRange(s, true); !ok {
				return fmt.Sprintf("invalid published port %q", s)
			}
			return ""
		}},
		"protocol": {want: "a string", scalar: checkEnum("tcp", "udp", "sctp")}, "app_protocol": rString,
	}, needs: []string{"target"}}
	rVolumeItem = &rule{want: "a volume string or a mapping", scalar: checkVolume, keys: map[string]*rule{
		"type":   {want: "a string", scalar: checkEnum("bind", "volume", "tmpfs", "npipe", "cluster", "image")},
		"source": rPath, "target": rPath, "read_only": rBool, "consistency": rString,
		"bind":   obj(map[string]*rule{"propagation": rString, "create_host_path": rBool, "recursive": rString, "selinux": {want: "a string", scalar: checkEnum("z", "Z")}}),
		"volume": obj(map[string]*rule{"labels": rListOrMap, "nocopy": rBool, "subpath": rString}),
		"tmpfs":  obj(map[string]*rule{"size": rBytes, "mode": {want: "a file mode", scalar: checkOctal}}),
		"image":  obj(map[string]*rule{"subpath": rString}),
	}, needs: []string{"type", "target"}, mapCheck: func(n *yaml.Node) (string, string) {
		if scalarValue(n, "type") == "bind" {
			if k, v := mapGet(n, "source"); k == nil || resolve(v).Value == "" {
				return "", "a bind mount needs a source"
			}
		}
		return "", ""
	}}
	rFileRef = &rule{want: "a string or a mapping", scalar: anyScalar, str: true, keys: map[string]*rule{
		"source": rPath, "target": rPath, "uid": rString, "gid": rString,
		"mode": {want: "a file mode", scalar: checkOctal},
	}, needs: []string{"source"}}
	rServiceNetworks = &rule{want: "a list or a mapping of networks", items: rString, values: obj(map[string]*rule{
		"aliases": rStringList, "interface_name": rString, "ipv4_address": rString, "ipv6_address": rString,
		"link_local_ips": rStringList, "mac_address": rString, "driver_opts": rStringMap,
		"priority": rInt, "gw_priority": rInt, "use_service_name_alias": rBool,
	})}
	rDependsOn = &rule{want: "a list or a mapping of services", items: rString, values: obj(map[string]*rule{
		"condition": {want: "a string", scalar: checkEnum(ConditionStarted, ConditionHealthy, ConditionCompletedSuccessfully)},
		"required":  rBool, "restart": rBool,
	})}
	rEnvFile = &rule{want: "a string or a list", scalar: anyScalar, items: &rule{want: "a string or a mapping", scalar: anyScalar, str: true,
		keys: map[string]*rule{"path": rPath, "format": rString, "required": rBool}, needs: []string{"path"}}}
	rDevelop = obj(map[string]*rule{"watch": {want: "a list", items: &rule{want: "a mapping", keys: map[string]*rule{
		"path": rPath, "action": {want: "a string", scalar: checkEnum("sync", "sync+restart", "sync+exec", "restart", "rebuild")},
		"target": rString, "exec": rHook, "ignore": rStrOrList, "include": rStrOrList, "initial_sync": rBool,
	}, needs: []string{"path", "action"}, mapCheck: func(n *yaml.Node) (string, string) {
		action := scalarValue(n, "action")
		if strings.HasPrefix(action, "sync") && scalarValue(n, "target") == "" {
			return "action", fmt.Sprintf("action %q needs a target", action)
		}
		if action == "sync+exec" {
			if k, _ := mapGet(n, "exec"); k == nil {
				return "action", `action "sync+exec" needs exec.command`
			}
		}
		return "", ""
	}}}})
	rBerth = obj(map[string]*rule{"restart_on_unhealthy": rBool, "unhealthy_restart_limit": rInt})

	rService = obj(map[string]*rule{
		// service
		"attach": rBool, "container_name": rString, "deploy": rDeploy, "develop": rDevelop,
		"extends":        {want: "a string or a mapping", scalar: anyScalar, keys: map[string]*rule{"service": rPath, "file": rPath}, needs: []string{"service"}},
		"external_links": rStringList, "links": rStringList, "post_start": {want: "a list", items: rHook},
		"pre_start": rAny, "pre_stop": {want: "a list", items: rHook}, "profiles": rStringList, "provider": rAny,
		"restart": {want: "a string", scalar: checkRestart}, "scale": rInt,
		// workload
		"build": rBuild, "depends_on": rDependsOn, "expose": {want: "a list", items: rString},
		"healthcheck": rHealthcheck, "ports": {want: "a list", items: rPortItem}, "stdin_open": rBool, "tty": rBool,
		// container
		"annotations": rListOrMap, "blkio_config": rAny, "cap_add": rStringList, "cap_drop": rStringList,
		"cgroup": rString, "cgroup_parent": rString, "command": rStrOrList, "configs": {want: "a list", items: rFileRef},
		"cpu_count": rInt, "cpu_percent": rNumber, "cpu_period": rInt, "cpu_quota": rInt,
		"cpu_rt_period": rAny, "cpu_rt_runtime": rAny, "cpu_shares": rInt, "cpus": rNumber, "cpuset": rString,
		"credential_spec": rAny, "device_cgroup_rules": rStringList, "devices": {want: "a list", items: &rule{want: "a string or a mapping", scalar: checkDevice, keys: map[string]*rule{"source": rPath, "target": rPath, "permissions": rString}}},
		"dns": rStrOrList, "dns_opt": rStringList, "dns_search": rStrOrList, "domainname": rString,
		"entrypoint": rStrOrList, "env_file": rEnvFile, "environment": rListOrMap, "extra_hosts": rListOrMap,
		"gpus": rAny, "group_add": {want: "a list", items: rString}, "hostname": rString, "image": rString,
		"init": rBool, "ipc": rString, "isolation": rString, "label_file": rStrOrList, "labels": rListOrMap,
		"logging":     obj(map[string]*rule{"driver": rString, "options": rStringMap}),
		"mac_address": rString, "mem_limit": rBytes, "mem_reservation": rBytes, "mem_swappiness": rInt,
		"memswap_limit": rBytes, "models": rAny, "network_mode": rString, "networks": rServiceNetworks,
		"oom_kill_disable": rBool, "oom_score_adj": rInt, "pid": rString, "pids_limit": rInt, "platform": rString,
		"privileged": rBool, "pull_policy": {want: "a string", scalar: checkPullPolicy}, "pull_refresh_after": rString, "read_only": rBool,
		"runtime": rString, "secrets": {want: "a list", items: rFileRef}, "security_opt": rStringList,
		"shm_size": rBytes, "stop_grace_period": rDuration, "stop_signal": rString, "storage_opt": rAny,
		"sysctls": rListOrMap, "tmpfs": rStrOrList, "ulimits": rUlimits, "umask": rString, "use_api_socket": rBool,
		"user": rString, "userns_mode": rString, "uts": rString, "volume_driver": rString,
		"volumes": {want: "a list", items: rVolumeItem}, "volumes_from": rStringList, "working_dir": rString,
		"x-berth": rBerth,
	})
	rExternal = &rule{want: "a boolean or a mapping", scalar: checkBool, keys: map[string]*rule{"name": rString}}
	rNetwork  = obj(map[string]*rule{
		"name": rString, "driver": rString, "driver_opts": rStringMap, "attachable": rBool,
		"enable_ipv4": rBool, "enable_ipv6": rBool, "external": rExternal, "internal": rBool, "labels": rListOrMap,
		"ipam": obj(map[string]*rule{"driver": rString, "options": rStringMap, "config": {want: "a list", items: obj(map[string]*rule{
			"subnet": rString, "ip_range": rString, "gateway": rString, "aux_addresses": rStringMap,
		})}}),
	})
	rVolume = obj(map[string]*rule{
		"name": rString, "driver": rString, "driver_opts": rStringMap, "external": rExternal, "labels": rListOrMap,
	})
	rSecret = obj(map[string]*rule{
		"name": rString, "file": rString, "environment": rString, "content": rString, "external": rExternal,
		"labels": rListOrMap, "driver": rString, "driver_opts": rStringMap, "template_driver": rString,
	})
	rInclude = &rule{want: "a string or a mapping", scalar: anyScalar, keys: map[string]*rule{
		"path": rStrOrList, "env_file": rStrOrList, "project_directory": rString,
	}}
	rTop = obj(map[string]*rule{
		"version": rString, "name": rString,
		"include":  {want: "a list", items: rInclude},
		"services": {want: "a mapping of services", values: rService, keyOK: checkName},
		"networks": {want: "a mapping of networks", values: rNetwork, keyOK: checkName},
		"volumes":  {want: "a mapping of volumes", values: rVolume, keyOK: checkName},
		"secrets":  {want: "a mapping of secrets", values: rSecret, keyOK: checkName},
		"configs":  {want: "a mapping of configs", values: rSecret, keyOK: checkName},
		"models":   rAny, "jobs": rAny,
	})
)

// validator walks one file.
type validator struct {
	file *yamlFile
	errs []*Error
	// lookup resolves variables for interpolation; nil leaves values
	// with a '$' to compose-go.
	lookup func(string) (string, bool)
	// unset is told about variables used without a default that are not
	// set (they become empty strings).
	unset func(name string)
}

const maxReportedErrors = 1 // the first error is reported; fixing it reveals the next

func (v *validator) fail(n *yaml.Node, p keyPath, msg string) {
	if len(v.errs) >= maxReportedErrors {
		return
	}
	e := &Error{File: v.file.Display, Path: p.String(), Msg: msg}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	v.errs = append(v.errs, e)
}

// validateFile checks every document of f against rTop.
func validateFile(f *yamlFile, lookup func(string) (string, bool), unset func(string)) error {
	v := &validator{file: f, lookup: lookup, unset: unset}
	for _, d := range f.Docs {
		if d.Tag == "!reset" || d.Tag == "!override" {
			v.fail(d, nil, fmt.Sprintf("the whole document cannot be tagged %s", d.Tag))
			continue
		}
		if resolve(d).Kind != yaml.MappingNode {
			if resolve(d).Kind == yaml.ScalarNode && resolve(d).Tag == "!!null" {
				continue
			}
			v.fail(d, nil, "top level must be a mapping")
			continue
		}
		v.check(d, d, rTop, nil)
	}
	if len(v.errs) > 0 {
		return v.errs[0]
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// check validates node n (at path p, pointing errors at `at`) against r.
func (v *validator) check(n, at *yaml.Node, r *rule, p keyPath) {
	if r == nil || len(v.errs) >= maxReportedErrors {
		return
	}
	if n.Tag == "!reset" {
		return
	}
	n = resolve(n)
	if n == nil {
		return
	}
	if n.Tag == "!reset" {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// compose-go does not expect null where a value is due (it can
		// crash on it), so only empty sections and the nullable values
		// below may be null.
		if r.scalar != nil && !r.nullOK {
			v.fail(at, p, fmt.Sprintf("must be %s, not empty", r.want))
		}
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if r.scalar == nil {
			v.fail(at, p, fmt.Sprintf("must be %s, not %s", r.want, kindName(n)))
			return
		}
		val := n.Value
		if strings.Contains(val, "$") {
			if v.lookup == nil {
				return // checked by compose-go after interpolation
			}
			out, err := template.Substitute(val, v.lookup)
			var missing *template.MissingRequiredError
			switch {
			case errors.As(err, &missing):
				v.fail(n, p, err.Error())
				return
			case err != nil:
				v.fail(n, p, fmt.Sprintf("invalid interpolation in %q (write a literal $ as $$)", val))
				return
			}
			val = out
			if v.unset != nil {
				for name, vr := range template.ExtractVariables(map[string]any{"v": n.Value}, template.DefaultPattern) {
					if _, ok := v.lookup(name); !ok && vr.DefaultValue == "" && vr.PresenceValue == "" && !vr.Required {
						v.unset(name)
					}
				}
			}
		}
		if r.str && n.Tag != "!!str" && !strings.Contains(n.Value, "$") {
			v.fail(n, p, fmt.Sprintf("must be a string, not %s (quote it)", n.Value))
			return
		}
		if msg := r.scalar(val); msg != "" {
			v.fail(n, p, msg)
		}
	case yaml.SequenceNode:
		if r.items == nil {
			v.fail(at, p, fmt.Sprintf("must be %s, not a list", r.want))
			return
		}
		for i, it := range n.Content {
			v.check(it, it, r.items, p.index(i))
		}
	case yaml.MappingNode:
		if r.keys == nil && r.values == nil {
			v.fail(at, p, fmt.Sprintf("must be %s, not a mapping", r.want))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Tag == "!!merge" {
				continue
			}
			if line, dup := seen[k.Value]; dup {
				v.fail(k, p.key(k.Value), fmt.Sprintf("key %q is already defined at line %d", k.Value, line))
				return
			}
			seen[k.Value] = k.Line
		}
		keys, vals := mapEntries(n)
		for _, need := range r.needs {
			k, val := mapGet(n, need)
			if k == nil {
				v.fail(at, p, fmt.Sprintf("missing required key %q", need))
				return
			}
			if r := resolve(val); r == nil || (r.Kind == yaml.ScalarNode && (r.Tag == "!!null" || r.Value == "")) {
				v.fail(k, p.key(need), "must not be empty")
				return
			}
		}
		defer func() {
			if r.mapCheck == nil || len(v.errs) > 0 {
				return
			}
			if key, msg := r.mapCheck(n); msg != "" {
				if key == "" {
					v.fail(at, p, msg)
				} else if k, _ := mapGet(n, key); k != nil {
					v.fail(k, p.key(key), msg)
				}
			}
		}()
		for i, k := range keys {
			name := k.Value
			kp := p.key(name)
			if k.Kind != yaml.ScalarNode {
				v.fail(k, p, "mapping keys must be strings")
				return
			}
			if r.values != nil {
				if r.keyOK != nil {
					if msg := r.keyOK(name); msg != "" {
						v.fail(k, kp, msg)
						return
					}
				}
				v.check(vals[i], k, r.values, kp)
				continue
			}
			if strings.HasPrefix(name, "x-") && name != "x-berth" {
				continue
			}
			sub, ok := r.keys[name]
			if !ok {
				v.fail(k, kp, fmt.Sprintf("unknown key %q", name))
				return
			}
			v.check(vals[i], k, sub, kp)
		}
	}
}
