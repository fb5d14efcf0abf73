package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/keyfile"
	"fastcall/node/registry/client"
	"fastcall/rfc"
	"fastcall/wire"
)

// clientFlags are the flags of every subcommand that talks to a node.
type clientFlags struct {
	key     *string
	timeout *time.Duration
	maxDg   *int
	// inFlight is the most calls the command has in flight at once
	// (bench: -c); the endpoint holds at least that many, else every
	// call past its slots fails at once with EBUSY. 0: clientPending.
	inFlight int
}

// clientPending is the endpoint's bound on calls in flight (MaxPending)
// for a command that makes one call at a time.
const clientPending = 64

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	return &clientFlags{
		key:     fs.String("key", "", "file holding the cluster key; empty: checksum mode"),
		timeout: fs.Duration("t", 2*time.Second, "deadline of each call"),
		maxDg:   fs.Int("max-datagram", wire.DefaultMaxDatagram, "datagram size limit (must match the node)"),
	}
}

// parseAddr accepts host:port with a numeric host and a port other than
// 0 (checkPort).
func parseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("address %q: want IP:PORT", s)
	}
	return ap, checkPort(ap)
}

// checkPort refuses an address with port 0, which names no node: a call
// sent there could only wait out its deadline.
func checkPort(ap netip.AddrPort) error {
	if ap.Port() == 0 {
		return fmt.Errorf("address %s: port 0 names no node", ap)
	}
	return nil
}

// open is dial for a subcommand: on failure it prints the error and
// returns exit status 1, or 2 when the engine refuses -max-datagram.
func (c *clientFlags) open(dst netip.AddrPort, stderr io.Writer) (*rfc.Endpoint, int) {
	ep, err := c.dial(dst)
	var ce *rfc.ConfigError
	if errors.As(err, &ce) && ce.Field == "MaxDatagram" {
		return nil, usageError(stderr, "-max-datagram %s: %s", ce.Value, ce.Why)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rfcctl: %v\n", err)
		return nil, 1
	}
	return ep, 0
}

// registryClient opens an endpoint and a registry client for the centers
// named by -c (comma-separated IP:PORT); code is non-zero on failure.
func (c *clientFlags) registryClient(name, centers string, stderr io.Writer) (*rfc.Endpoint, *client.Client, int) {
	var cs []netip.AddrPort
	for _, s := range strings.Split(centers, ",") {
		ap, err := parseAddr(s)
		if err != nil {
			return nil, nil, usageError(stderr, "%s -c: %v", name, err)
		}
		cs = append(cs, ap)
	}
	ep, code := c.open(cs[0], stderr)
	if code != 0 {
		return nil, nil, code
	}
	cli, err := client.NewClient(ep, client.DefaultClientConfig(cs...))
	if err != nil {
		ep.Close()
		// The client owns the rule on how many centers there may be;
		// breaking it is -c's fault, a usage error.
		if ce, ok := errors.AsType[*rfc.ConfigError](err); ok && ce.Field == "Centers" {
			return nil, nil, usageError(stderr, "%s -c %s: %s", name, centers, ce.Why)
		}
		fmt.Fprintf(stderr, "rfcctl: %v\n", err)
		return nil, nil, 1
	}
	return ep, cli, 0
}

// dial opens a client endpoint suited to dst's address family.
func (c *clientFlags) dial(dst netip.AddrPort) (*rfc.Endpoint, error) {
	cfg := rfc.DefaultConfig()
	cfg.Addr = "0.0.0.0:0"
	if dst.Addr().Is6() && !dst.Addr().Is4In6() {
		cfg.Addr = "[::]:0"
	}
	if dst.Addr().IsLoopback() {
		cfg.Addr = "127.0.0.1:0"
		if dst.Addr().Is6() {
			cfg.Addr = "[::1]:0"
		}
	}
	cfg.MaxDatagram = *c.maxDg
	cfg.Workers = 1
	cfg.DupEntries = 16
	cfg.MaxPending = max(clientPending, c.inFlight)
	if *c.key != "" {
		key, err := keyfile.Read(*c.key)
		if err != nil {
			return nil, err
		}
		cfg.Key = key
	}
	return rfc.Listen(cfg)
}

func (c *clientFlags) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), *c.timeout)
}

// callNumber resolves a call name or number.
func callNumber(s string) (uint16, error) {
	if no, ok := builtin.Names[s]; ok {
		return no, nil
	}
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("call %q: not a known name or a number 1..65535", s)
	}
	return uint16(v), nil
}

// errName renders a call error for humans: the error number's name, or
// the error text for local failures.
func errName(err error) string {
	if e, ok := err.(wire.Errno); ok {
		return e.String()
	}
	return err.Error()
}
