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

// newFlags returns a flag set that prints usage text and flags to stderr.
func newFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rfcctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rfcctl %s [flags] %s\n\nflags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, allowing flags before and after the positional
// arguments; done is true when the command must exit with code (help: 0,
// bad flags: 2). The positional arguments are in positional(fs).
func parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0, true
			}
			return 2, true
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	positionals[fs] = pos
	return 0, false
}

var positionals = map[*flag.FlagSet][]string{}

// positional returns the positional arguments parse collected.
func positional(fs *flag.FlagSet) []string { return positionals[fs] }

// clientFlags are the flags of every subcommand that talks to a node.
type clientFlags struct {
	key     *string
	timeout *time.Duration
	maxDg   *int
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	return &clientFlags{
		key:     fs.String("key", "", "file holding the cluster key; empty: checksum mode"),
		timeout: fs.Duration("t", 2*time.Second, "deadline of each call"),
		maxDg:   fs.Int("max-datagram", wire.DefaultMaxDatagram, "datagram size limit (must match the node)"),
	}
}

// usageError prints a message and returns exit status 2.
func usageError(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "rfcctl: "+format+"\n", a...)
	return 2
}

// parseAddr accepts host:port with a numeric host.
func parseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("address %q: want IP:PORT", s)
	}
	return ap, nil
}

// open is dial for a subcommand: on failure it prints the error and
// returns exit status 1.
func (c *clientFlags) open(dst netip.AddrPort, stderr io.Writer) (*rfc.Endpoint, int) {
	ep, err := c.dial(dst)
	if err != nil {
		fmt.Fprintf(stderr, "rfcctl: %v\n", err)
		return nil, 1
	}
	return ep, 0
}

// connect parses a node address argument and opens a client endpoint for
// it; code is 2 for a bad address, 1 if the endpoint cannot open.
func (c *clientFlags) connect(name, arg string, stderr io.Writer) (*rfc.Endpoint, netip.AddrPort, int) {
	dst, err := parseAddr(arg)
	if err != nil {
		return nil, dst, usageError(stderr, "%s: %v", name, err)
	}
	ep, code := c.open(dst, stderr)
	return ep, dst, code
}

// nodeQuery is a command that asks one node: its flags, the endpoint it
// opened and the node's address.
type nodeQuery struct {
	cf     *clientFlags
	ep     *rfc.Endpoint
	dst    netip.AddrPort
	asJSON bool
}

// openNodeQuery parses the flags of a command of the form "NAME [flags]
// ADDR" (client flags and -json) and opens an endpoint for ADDR. When ok
// is false the command ends with status code (0 for -h); otherwise the
// caller closes q.ep.
func openNodeQuery(name string, args []string, stderr io.Writer) (q nodeQuery, code int, ok bool) {
	fs := newFlags(name, "ADDR", stderr)
	q.cf = addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parse(fs, args); done {
		return q, code, false
	}
	pos := positional(fs)
	if len(pos) != 1 {
		return q, usageError(stderr, "%s: want ADDR", name), false
	}
	q.asJSON = *asJSON
	q.ep, q.dst, code = q.cf.connect(name, pos[0], stderr)
	return q, code, code == 0
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
	cfg.MaxPending = 64
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
