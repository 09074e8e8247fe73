// Package volumes owns named volumes, bind mounts and tmpfs mounts.
package volumes
