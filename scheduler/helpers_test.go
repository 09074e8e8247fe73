package scheduler

import (
	"sort"

	"github.com/berth-dev/berth/spec"
)

// Small builders for test projects.

type svcOpt func(*spec.Service)

func svc(name string, opts ...svcOpt) spec.Service {
	s := spec.Service{Name: name, Image: "busybox", Replicas: 1}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func proj(name string, services ...spec.Service) *spec.Project {
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	return &spec.Project{Name: name, Services: services}
}

func dependsOn(on, condition string) svcOpt {
	return func(s *spec.Service) {
		s.DependsOn = append(s.DependsOn, spec.Dependency{Service: on, Condition: condition, Required: true})
	}
}

func optionalDep(on string) svcOpt {
	return func(s *spec.Service) {
		s.DependsOn = append(s.DependsOn, spec.Dependency{Service: on, Condition: spec.ConditionStarted, Required: false})
	}
}

func restartDep(on, condition string) svcOpt {
	return func(s *spec.Service) {
		s.DependsOn = append(s.DependsOn, spec.Dependency{Service: on, Condition: condition, Required: true, Restart: true})
	}
}

func links(l ...string) svcOpt { return func(s *spec.Service) { s.Links = append(s.Links, l...) } }

func volumesFrom(v ...string) svcOpt {
	return func(s *spec.Service) { s.VolumesFrom = append(s.VolumesFrom, v...) }
}

func networkMode(m string) svcOpt { return func(s *spec.Service) { s.NetworkMode = m } }

func replicas(n int) svcOpt { return func(s *spec.Service) { s.Replicas = n } }

func containerName(n string) svcOpt { return func(s *spec.Service) { s.ContainerName = n } }

const (
	started   = spec.ConditionStarted
	healthy   = spec.ConditionHealthy
	completed = spec.ConditionCompletedSuccessfully
)
