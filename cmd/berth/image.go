package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/image"
)

func init() { register(newImageCmd) }

// openImageStore opens the image store under the berth root.
func openImageStore(g *globalOptions) (*image.Store, error) {
	return image.Open(filepath.Join(g.Root, "images"))
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newImageCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images: pull, list, inspect, remove, prune, load, import, save",
	}
	cmd.AddCommand(newImagePullCmd(g), newImageLsCmd(g), newImageInspectCmd(g), newImageRmCmd(g),
		newImagePruneCmd(g), newImageLoadCmd(g), newImageImportCmd(g), newImageSaveCmd(g), newImageCheckCmd(g))
	return cmd
}

func newImagePullCmd(g *globalOptions) *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			var w io.Writer = os.Stdout
			if quiet {
				w = nil
			}
			im, err := st.Pull(ctx, args[0], image.PullOptions{Platform: platform, Progress: w})
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(cmd.OutOrStdout(), firstOr(im.Names, im.ID))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pull (default linux and the host architecture)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image name")
	return cmd
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

// imageRow is one line of `berth image ls`.
type imageRow struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	ID         string    `json:"id"`
	Created    time.Time `json:"created,omitzero"`
	Size       int64     `json:"size"`
	Platform   string    `json:"platform,omitempty"`
	Digest     string    `json:"digest"`
}

func imageRows(ims []*image.Image) []imageRow {
	var rows []imageRow
	for _, im := range ims {
		base := imageRow{ID: im.ShortID(), Created: im.Created, Size: im.Size(), Platform: im.Platform, Digest: im.Manifest}
		if len(im.Names) == 0 {
			r := base
			r.Repository, r.Tag = "<none>", "<none>"
			if len(im.Digests) > 0 {
				r.Repository, _, _ = strings.Cut(im.Digests[0], "@")
			}
			rows = append(rows, r)
		}
		for _, n := range im.Names {
			r := base
			i := strings.LastIndex(n, ":")
			if i > strings.LastIndex(n, "/") {
				r.Repository, r.Tag = n[:i], n[i+1:]
			} else {
				r.Repository, r.Tag = n, "<none>"
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func newImageLsCmd(g *globalOptions) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List stored images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			ims, err := st.List()
			if err != nil {
				return err
			}
			rows := imageRows(ims)
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Fprintln(out, r.ID)
					}
				}
				return nil
			case format == "json":
				if rows == nil {
					rows = []imageRow{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case format == "" || format == "table":
				tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, createdText(r.Created), units.HumanSizeWithPrecision(float64(r.Size), 3))
				}
				return tw.Flush()
			}
			return fmt.Errorf("unknown --format %q (want table or json)", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: table (default) or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only image IDs")
	return cmd
}

// inspectOutput is what `berth image inspect` prints for each image.
type inspectOutput struct {
	*image.Image
	Size   int64          `json:"size"`
	Config *image.Config  `json:"config"`
	Raw    map[string]any `json:"rawConfig,omitempty"`
}

func newImageInspectCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect REF...",
		Short: "Show stored images' metadata and config as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			var out []inspectOutput
			for _, ref := range args {
				im, err := st.Get(ref)
				if err != nil {
					return err
				}
				cfg, err := st.Config(im)
				if err != nil {
					return err
				}
				o := inspectOutput{Image: im, Size: im.Size(), Config: cfg}
				if raw, err := st.RawConfig(im); err == nil {
					json.Unmarshal(raw, &o.Raw)
				}
				out = append(out, o)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
}

func newImageRmCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "rm REF...",
		Aliases: []string{"remove"},
		Short:   "Remove image names (the image goes with its last name; layers stay until prune)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				before, err := st.Get(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				removed, err := st.Remove(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				// Docker's output: each name that went, then the image.
				untagged := before.Names
				if len(removed) == 0 {
					n, _ := image.NormalizeName(ref)
					untagged = []string{n}
				}
				for _, n := range untagged {
					fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", n)
				}
				for _, id := range removed {
					fmt.Fprintln(cmd.OutOrStdout(), "Deleted:", id)
				}
			}
			return errors.Join(errs...)
		},
	}
}

func newImagePruneCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Remove dangling images and every layer and blob no image or container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			rep, err := st.Prune()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, id := range rep.Images {
				fmt.Fprintln(out, "Deleted:", id)
			}
			fmt.Fprintf(out, "Removed %d layers and %d blobs; reclaimed %s\n", rep.Layers, rep.Blobs, units.HumanSizeWithPrecision(float64(rep.BytesFreed), 3))
			return nil
		},
	}
}

func newImageLoadCmd(g *globalOptions) *cobra.Command {
	var input, platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load -i FILE",
		Short: "Load images from a docker-save tarball or an OCI layout (directory or tar)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if input == "" {
				return errors.New("load: -i FILE is required (berth does not read archives from stdin)")
			}
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			var w io.Writer = cmd.OutOrStdout()
			if quiet {
				w = nil
			}
			_, err = st.Load(ctx, input, platform, w)
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "tarball or OCI layout directory to load")
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pick from multi-platform layouts")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing")
	return cmd
}

func newImageImportCmd(g *globalOptions) *cobra.Command {
	var changes []string
	var platform string
	cmd := &cobra.Command{
		Use:   "import TARBALL REF",
		Short: "Make a one-layer image from a rootfs tarball",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			im, err := st.Import(ctx, args[0], args[1], image.ImportOptions{Changes: changes, Platform: platform})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), im.ID)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, `Dockerfile instruction for the config (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, VOLUME, LABEL, STOPSIGNAL), e.g. 'CMD ["sh"]'`)
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to record (default linux and the host architecture)")
	return cmd
}

func newImageSaveCmd(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save -o FILE REF...",
		Short: "Save images as a docker-save tarball",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (retErr error) {
			if output == "" {
				return errors.New("save: -o FILE is required")
			}
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			tmp := output + ".tmp"
			f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			defer func() {
				if retErr != nil {
					f.Close()
					os.Remove(tmp)
				}
			}()
			if err := st.Save(f, args); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(tmp, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write")
	return cmd
}

func newImageCheckCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Verify the image store (blob digests, layers, index); exit 1 on problems",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(g)
			if err != nil {
				return err
			}
			problems, err := st.Check()
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if len(problems) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("image store: %d problems", len(problems))}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "image store is clean")
			return nil
		},
	}
}
