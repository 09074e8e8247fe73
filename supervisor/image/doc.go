// Package image is berth's OCI image store: it pulls images from registries
// (go-containerregistry), loads docker-save tarballs and OCI layouts, imports
// rootfs tarballs, and gives each container a copy-on-write root filesystem
// (overlayfs) over read-only layers shared by every image that has them.
//
// The API: Open a Store; Pull, Load and Import bring images in (Ensure
// applies a Compose pull_policy); List, Get, Config (with Config.Resolve
// laying a service over it), Tag, Remove, Prune, Save and Check manage
// them; Prepare, Unmount and Release give containers their root
// filesystems.
//
// On-disk layout under the store root (the caller passes e.g.
// $BERTH_ROOT/images):
//
//	store.lock            flock: shared while pulling/loading/preparing,
//	                      exclusive while pruning (so prune never removes
//	                      what a running pull is about to reference)
//	index.lock            flock: exclusive around each read-modify-write of
//	                      index.json
//	index.json            images (config digest = image ID) and their names;
//	                      replaced atomically (index.json.tmp + fsync +
//	                      rename)
//	blobs/sha256/<hex>    manifests, configs and compressed layers, each
//	                      verified against its digest before it is renamed
//	                      into place
//	layers/<hex>          one unpacked layer per diffID, shared by all images;
//	                      it exists only once complete (unpacked into tmp/,
//	                      synced, then renamed)
//	l/<short>             short symlinks to layers/<hex> for the legacy
//	                      mount(2) path, whose options must fit in a page
//	init/<etc>-<missing>  mount-point layers: empty etc/hosts, etc/hostname,
//	                      etc/resolv.conf (those an image lacks) under an
//	                      /etc of the image's mode and owner; the topmost
//	                      lower layer of every service container whose image
//	                      needs one, made once like a layer, never pruned
//	containers/<id>/      upper, work, merged (the mount point) and
//	                      lowers (the layers the container uses)
//	tmp/                  work in progress; never trusted, wiped when no
//	                      other process holds the store
//
// Trust rule: only what index.json names, and only blobs and layers that
// exist under their final names, are ever used. A process killed at any
// point leaves at most junk in tmp/, and the next pull redoes that work while
// keeping every blob it already verified.
//
// Unpacking resolves every path with openat2(RESOLVE_IN_ROOT) and creates
// the final component with *at syscalls that do not follow symlinks, so no
// tar entry can write outside its layer directory.
//
// A container's root filesystem goes through these states:
//
//	(none) --Prepare--> mounted --cleanup / Release--> (none)
//	                       |  ^
//	              Unmount  v  | Prepare (same id: upper dir kept)
//	                     unmounted
package image
