package supervisor

import (
	"github.com/berth-dev/berth/volumes"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func volumesPrepareOptions(imageVolumes []string, inherited []specs.Mount, renewAnon bool) volumes.PrepareOptions {
	return volumes.PrepareOptions{ImageVolumes: imageVolumes, Inherited: inherited, RenewAnonymous: renewAnon}
}
