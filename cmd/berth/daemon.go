package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/supervisor"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func init() {
	register(newDaemonCmd)
	register(newKeeperCmd)
}

const daemonLong = `Run the berth supervisor for a berth root.

berth runs three kinds of processes:

  berth (CLI)   talks HTTP+JSON to the daemon over $ROOT/berth.sock
                (mode 0600: only root can use it).
  berth daemon  the supervisor: one per root. It owns the image store,
                volumes, networks (bridges, NAT, embedded DNS), the
                container runtime and every container's lifecycle
                (restarts, health checks, logs). Its pid is in
                $ROOT/berth.pid, which it keeps locked while it runs.
  berth keeper  a tiny parent of the daemon. It is a child subreaper, so
                when the daemon dies (even by kill -9) the containers it
                started are reparented to the keeper, which reaps them
                and records their exit status in $ROOT/exits; and it
                starts the daemon again, with a backoff. The new daemon
                re-adopts the containers that still run (matching pid and
                start time) and applies the restart policy of those that
                exited meanwhile.

Containers never depend on the daemon: their output goes to files the
daemon ingests into the logs, so a daemon that stops or crashes stops no
container. Stopping the daemon (SIGTERM, or 'berth daemon stop') leaves
every container running.

The CLI starts 'berth keeper' by itself (detached, output in
$ROOT/daemon.log) when nothing answers on the socket. On a server, let
systemd start it at boot instead: examples/systemd/berth.service runs
'berth keeper' (KillMode=process, so stopping the service stops only
berth, not the containers). On start the daemon brings back the projects
whose services have restart: always or unless-stopped (unless the user
stopped them), in dependency order, waiting for health checks where
depends_on asks.

Running 'berth daemon' by hand (in the foreground, without a keeper) is
fine for debugging; containers it starts are then reparented to host
pid 1 if it dies, and their exit codes are lost.`

func newDaemonCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the berth supervisor (normally started on demand, or by systemd through berth keeper)",
		Long:  daemonLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(g.Root)
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon (and its keeper); containers keep running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pid, err := supervisor.StopDaemon(g.Root)
			if err != nil {
				return err
			}
			if pid == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "the berth daemon is not running")
				return nil
			}
			// Wait (bounded) until the daemon and its keeper are gone,
			// so that the next command can start new ones at once.
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if supervisor.DaemonGone(g.Root) {
					return nil
				}
				time.Sleep(20 * time.Millisecond)
			}
			return fmt.Errorf("the daemon (pid %d) did not stop within 30s", pid)
		},
	})
	return cmd
}

func runDaemon(root string) error {
	markInheritedCloseOnExec()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	d, err := supervisor.NewDaemon(supervisor.DaemonConfig{Root: root, Version: currentVersion().Version, Logger: log})
	if err != nil {
		return err
	}
	signal.Ignore(unix.SIGHUP, unix.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	err = d.Run(ctx)
	if errors.Is(err, supervisor.ErrDaemonRunning) {
		return &exitError{code: supervisor.ExitCodeAlreadyRunning, err: err}
	}
	if err == nil {
		log.Info("daemon stopped; containers keep running")
	}
	return err
}

func newKeeperCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "keeper",
		Short:  "Run the daemon under a subreaper that restarts it (see berth daemon --help)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			markInheritedCloseOnExec()
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			root, err := filepath.Abs(g.Root)
			if err != nil {
				return err
			}
			err = supervisor.RunKeeper(supervisor.KeeperConfig{
				Root:   root,
				Daemon: []string{exe, "daemon", "--root", root},
				Log:    os.Stderr,
			})
			if errors.Is(err, supervisor.ErrKeeperRunning) {
				// Two CLIs raced to start the daemon: the other keeper does.
				fmt.Fprintln(os.Stderr, "berth keeper:", err)
				return nil
			}
			return err
		},
	}
}
