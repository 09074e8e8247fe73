package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/supervisor/api"
	"github.com/berth-dev/berth/supervisor/build"
	"github.com/berth-dev/berth/supervisor/watch"
)

func init() { register(newWatchCmd) }

func newWatchCmd(g *globalOptions) *cobra.Command {
	var (
		po   projectOptions
		noUp bool
	)
	cmd := &cobra.Command{
		Use:   "watch [SERVICE...]",
		Short: "Sync, restart or rebuild services as their develop.watch paths change",
		Long: `Watch the develop.watch paths of the services (all that have rules when none is
named) and act on each change: sync writes the changed files straight into the
running containers (no tools needed in the image), sync+restart and restart
restart the service, sync+exec runs the rule's exec command, rebuild recreates
the service from a fresh image. Changes are batched over a short quiet period;
.dockerignore, ignore: and include: select the files, and editor temp files
(*.swp, *~, .#*, 4913) are skipped. After a container restarts, its watched
paths are synced again. Unless --no-up, the services are brought up first.
Stop with Ctrl-C.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := po.load(cmd.Context(), args)
			if err != nil {
				return err
			}
			st := &stack{Name: p.Name, Project: p}
			if err := st.checkServices(args); err != nil {
				return err
			}
			// Bad or missing rules fail before anything is brought up.
			if err := watch.Validate(p, args); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !noUp {
				// Services with build: need their image before up (as
				// `berth up` does, building only when it is missing).
				errw := cmd.ErrOrStderr()
				if p, err = ensureImages(ctx, g, p, args, false, ensureOptions{progress: errw, status: errw}); err != nil {
					return err
				}
				c, err := dial(g)
				if err != nil {
					return err
				}
				res, err := c.Up(ctx, api.UpRequest{Project: p, Services: args,
					Options: api.UpOptions{Detach: true}}, nil)
				c.Close()
				if err != nil {
					return err
				}
				if err := res.Err(); err != nil {
					return err
				}
			}
			return runWatch(ctx, g, p, args, cmd.OutOrStdout())
		},
	}
	po.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&noUp, "no-up", false, "do not bring the services up before watching")
	return cmd
}

// runWatch watches the develop.watch rules of services (every service
// with rules when empty) of p, whose containers run, until ctx ends; it
// writes one line per batch to out. `up --watch` calls it once the stack
// is up.
func runWatch(ctx context.Context, g *globalOptions, p *spec.Project, services []string, out io.Writer) error {
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	rt, err := openRuntime(g)
	if err != nil {
		return err
	}
	st, err := openImageStore(g)
	if err != nil {
		return err
	}
	b, err := build.New(g.Root, st, nil)
	if err != nil {
		return err
	}
	s, err := watch.NewSession(watch.Options{
		Project:    p,
		Services:   services,
		Controller: watch.NewDaemonController(p, c, rt, b),
		Out:        out,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Watching for changes (Ctrl-C to stop)")
	return s.Run(ctx)
}
