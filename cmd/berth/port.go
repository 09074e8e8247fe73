package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/supervisor/api"
)

func init() { register(newPortCmd) }

// publishedAddr finds the host address of a container's published port
// ("127.0.0.1:8080", "0.0.0.0:8080").
func publishedAddr(c api.ContainerSummary, port int, protocol string) (string, error) {
	for _, p := range c.Publishers {
		if p.TargetPort == port && strings.EqualFold(p.Protocol, protocol) && p.PublishedPort != 0 {
			host := p.URL
			if host == "" {
				host = "0.0.0.0"
			}
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			return fmt.Sprintf("%s:%d", host, p.PublishedPort), nil
		}
	}
	return "", fmt.Errorf("container %s: port %d/%s is not published", c.Name, port, protocol)
}

func newPortCmd(g *globalOptions) *cobra.Command {
	var (
		po       projectOptions
		protocol string
		index    int
	)
	cmd := &cobra.Command{
		Use:   "port [OPTIONS] SERVICE PRIVATE_PORT",
		Short: "Print the host address a service's port is published on",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			service := args[0]
			port, err := strconv.Atoi(args[1])
			if err != nil || port < 1 || port > 65535 {
				return fmt.Errorf("invalid port %q: want a number from 1 to 65535", args[1])
			}
			protocol = strings.ToLower(protocol)
			if protocol != "tcp" && protocol != "udp" {
				return fmt.Errorf("--protocol: unknown protocol %q (want tcp or udp)", protocol)
			}
			if index < 1 {
				return fmt.Errorf("--index: %d is not a replica number (1, 2, ...)", index)
			}
			st, c, err := dialProject(cmd.Context(), g, &po, []string{service})
			if err != nil {
				return err
			}
			defer c.Close()
			cs, err := c.Ps(cmd.Context(), st.Name, true)
			if err != nil {
				return err
			}
			ct, err := containerByIndex(cs, service, index)
			if err != nil {
				return err
			}
			addr, err := publishedAddr(ct, port, protocol)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), addr)
			return nil
		},
	}
	po.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	cmd.Flags().IntVar(&index, "index", 1, "the replica of the service, when it has several")
	return cmd
}
