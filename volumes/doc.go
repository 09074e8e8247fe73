// Package volumes owns what a container mounts besides its image: named
// and anonymous volumes, bind mounts, tmpfs mounts, volumes_from, and the
// files of secrets and configs. It turns a spec.Service into OCI mounts
// (specs.Mount) for the runtime; it imports spec and never the scheduler
// or the supervisor.
//
// # State on disk
//
//	DIR/.lock                 flock held by every metadata operation
//	DIR/.users.json           volume -> containers using it (soft state: atomic, not fsynced)
//	DIR/NAME/meta.json        a Volume, written atomically (temp, fsync, rename, fsync dir)
//	DIR/NAME/_data            the volume's content (bind-mounted into containers)
//	DIR/.new-NAME-*/          a create in progress (renamed to NAME when complete)
//	DIR/.rm-NAME-*/           a remove in progress (swept by Prune)
//	FILES/CONTAINER/secrets/  secret files of one container
//	FILES/CONTAINER/configs/  config files of one container
//
// DIR is normally $BERTH_ROOT/volumes and FILES $BERTH_ROOT/files.
//
// # Lifecycle of a volume
//
//	(absent) ──Create / first Prepare──► idle ──Prepare(c)──► used by c ──Release(c)──► idle
//	idle ──Remove / Prune / RemoveProjectVolumes──► (absent)
//
// A volume with driver_opts (a bind of a host directory, a tmpfs, a
// device) is mounted on its _data when its first user is prepared and
// unmounted when its last user is released.
//
// # Use by the supervisor
//
//	m, _ := volumes.NewForRoot(root)
//	inherited, _ := m.InheritMounts("db:ro", mountsOfDb)      // volumes_from, if any
//	mounts, release, err := m.PrepareWithOptions(ctx, p, svc, "proj-web-1", rootfs,
//		volumes.PrepareOptions{ImageVolumes: img.Volumes, Inherited: inherited, RenewAnonymous: renew})
//	// ... put mounts into the OCI spec, run the container ...
//	release()                                                  // after the container is deleted
//	m.RemoveProjectVolumes(p.Name, true, volumes.ExternalNames(p)...) // down -v
//
// Prepare runs before the container is created; release (or Release(name)
// from saved state after a crash) once it is deleted, not when it merely
// stops. Preparing the same container again (a restart) is harmless.
// The returned mounts are sorted parents first; a target that lies inside
// another mount (a volume below a volume) is created by the runtime as it
// mounts, inside the already mounted parent, as runc does.
//
// Every operation takes an exclusive flock on DIR/.lock, so one process
// at a time changes volume metadata; a long copy-in holds it for its
// duration.
//
// # Durability guarantees
//
//   - Metadata: meta.json is replaced atomically and fsynced with its
//     directory; a crash leaves the old or the new version.
//   - Create and remove are atomic renames: after a crash a volume either
//     exists complete (metadata and _data) or not at all under its name.
//   - Copy-in: the "pending" state is on disk before the copy starts and
//     "done" only after syncfs(2) flushed every copied file; a copy cut
//     short by a crash is wiped and redone by the next Prepare, never
//     taken for complete.
//   - Data written by a container: _data is a plain directory on the host
//     filesystem bind-mounted into the container, so a write the container
//     fsynced is on disk whatever happens to the container or the
//     supervisor afterwards (a tmpfs volume is memory by design).
//   - The users of volumes (.users.json) are soft state: written atomically (they survive a crash of berth)
//     but not fsynced, to keep fsync off the path of every container
//     start; after a power loss no container runs and a lost file
//     correctly means "no users".
//   - Secret and config files are derived data written anew by every
//     Prepare, so they are not fsynced either.
//
// # Safety
//
// Mountpoints are created in the container's rootfs with openat2
// RESOLVE_IN_ROOT, so a symlink in the image (say /data -> /) resolves
// inside the rootfs, never on the host. The image content copied into a
// volume is read the same way and walked with *at syscalls that do not
// follow symlinks. A volume subpath is checked with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS, so it cannot leave the volume. A volume is never
// deleted through a mount: its driver mount is undone first and checked
// gone.
package volumes
