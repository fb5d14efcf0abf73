package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"fastcall/node/registry/client"
	"fastcall/rfc"
)

// command is one subcommand's flag set, with the flags that most
// subcommands share: the client flags of a command that calls a node and
// -json.
type command struct {
	name    string
	args    string // the positional arguments, as the usage line shows them
	fs      *flag.FlagSet
	stderr  io.Writer
	cf      *clientFlags // nil for a command that calls no node
	asJSON  *bool        // nil for a command without -json
	centers *string      // -c, nil for a command that asks no registry
}

// Shared flags a command asks newCommand for.
const (
	withClient  = 1 << iota // -key, -t, -max-datagram
	withJSON                // -json, "print JSON"
	withCenters             // -c CENTERS, the registry centers
)

// newCommand returns the flag set of the subcommand name, whose usage line
// shows args; usage text and flag errors go to stderr.
func newCommand(name, args string, stderr io.Writer, shared int) *command {
	fs := flag.NewFlagSet("rfcctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rfcctl %s [flags] %s\n\nflags:\n", name, args)
		fs.PrintDefaults()
	}
	c := &command{name: name, args: args, fs: fs, stderr: stderr}
	if shared&withClient != 0 {
		c.cf = addClientFlags(fs)
	}
	if shared&withJSON != 0 {
		c.asJSON = fs.Bool("json", false, "print JSON")
	}
	if shared&withCenters != 0 {
		c.centers = fs.String("c", "", "registry centers, IP:PORT[,IP:PORT] (required)")
	}
	return c
}

// json adds -json with its own usage text.
func (c *command) json(usage string) {
	c.asJSON = c.fs.Bool("json", false, usage)
}

// parse parses args, allowing flags before and after the positional
// arguments, and returns the positional ones. When ok is false the command
// ends with code: 0 for -h, 2 for a bad flag or for positional arguments
// (and flag values) that valid rejects, after printing "NAME: want".
func (c *command) parse(args []string, valid func(pos []string) bool, want string) (pos []string, code int, ok bool) {
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		if c.fs.NArg() == 0 {
			break
		}
		pos = append(pos, c.fs.Arg(0))
		args = c.fs.Args()[1:]
	}
	if !valid(pos) {
		return nil, c.usageError("%s", want), false
	}
	if c.cf != nil && *c.cf.timeout <= 0 {
		// A call with no time left ends before it is sent.
		return nil, c.usageError("-t %v: want a positive deadline", *c.cf.timeout), false
	}
	return pos, 0, true
}

// verbSpec is one verb of a command of the form "NAME [flags] VERB
// ARGS...": its name, its arguments as the usage line shows them, and how
// many it takes, at least min and at most max (max < 0: no bound).
type verbSpec struct {
	name, args string
	min, max   int
}

// verbsOf reads the verbs of a command from its usage line, "VERB ARGS |
// VERB ARGS | ...": an argument ARG is required, [ARG] optional, and ARG...
// is one or more.
func verbsOf(usage string) []verbSpec {
	var verbs []verbSpec
	for _, alt := range strings.Split(usage, "|") {
		f := strings.Fields(alt)
		v := verbSpec{name: f[0], args: strings.Join(f[1:], " ")}
		unbounded := false
		for _, a := range f[1:] {
			switch {
			case strings.HasPrefix(a, "["):
				v.max++
			case strings.HasSuffix(a, "..."):
				v.min++
				unbounded = true
			default:
				v.min++
				v.max++
			}
		}
		if unbounded {
			v.max = -1
		}
		verbs = append(verbs, v)
	}
	return verbs
}

// parseVerb is parse for a command of verbs, whose usage line (the args
// of newCommand) verbsOf reads: it wants a verb (and -c for a command that
// has it), one of the usage line's and with an argument count in its
// bounds, and returns the verb and its arguments. When ok is false the
// command ends with code.
func (c *command) parseVerb(args []string) (verb string, rest []string, code int, ok bool) {
	verbs := verbsOf(c.args)
	names := make([]string, len(verbs))
	for i, v := range verbs {
		names[i] = v.name
	}
	want := "want a verb (" + strings.Join(names, ", ") + ")"
	if c.centers != nil {
		want = "want -c CENTERS and a verb (" + strings.Join(names, ", ") + ")"
	}
	pos, code, ok := c.parse(args, func(pos []string) bool { return len(pos) > 0 && (c.centers == nil || *c.centers != "") }, want)
	if !ok {
		return "", nil, code, false
	}
	verb, rest = pos[0], pos[1:]
	i := slices.Index(names, verb)
	if i < 0 {
		return "", nil, c.usageError("unknown verb %q", verb), false
	}
	if v := verbs[i]; len(rest) < v.min || (v.max >= 0 && len(rest) > v.max) {
		if v.args == "" {
			return "", nil, usageError(c.stderr, "%s %s: takes no arguments", c.name, verb), false
		}
		return "", nil, usageError(c.stderr, "%s %s: want %s", c.name, verb, v.args), false
	}
	return verb, rest, 0, true
}

// nargs returns a check that there are exactly n positional arguments.
func nargs(n int) func([]string) bool {
	return func(pos []string) bool { return len(pos) == n }
}

// usageError prints "rfcctl: NAME: message" and returns exit status 2.
func (c *command) usageError(format string, a ...any) int {
	return usageError(c.stderr, c.name+": "+format, a...)
}

// usageError prints a message and returns exit status 2.
func usageError(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "rfcctl: "+format+"\n", a...)
	return 2
}

// session is what a command that calls one node holds while it runs: a
// client endpoint, the node's address and a context bounded by -t.
type session struct {
	ep     *rfc.Endpoint
	dst    netip.AddrPort
	ctx    context.Context
	cancel context.CancelFunc
}

// close ends the context and closes the endpoint.
func (s *session) close() {
	s.cancel()
	s.ep.Close()
}

// dial parses the node address addr and opens a session with it; code is
// 2 for a bad address, 1 if the endpoint cannot open, else 0 and the
// caller closes the session.
func (c *command) dial(addr string) (*session, int) {
	dst, err := parseAddr(addr)
	if err != nil {
		return nil, c.usageError("%v", err)
	}
	return c.open(dst)
}

// open opens a session with dst; code is 1 if the endpoint cannot open.
func (c *command) open(dst netip.AddrPort) (*session, int) {
	ep, code := c.cf.open(dst, c.stderr)
	if code != 0 {
		return nil, code
	}
	s := &session{ep: ep, dst: dst}
	s.ctx, s.cancel = c.cf.ctx()
	return s, 0
}

// dialRegistry opens a session and a registry client for the centers
// named by -c (comma-separated IP:PORT); code is non-zero on failure.
func (c *command) dialRegistry() (*session, *client.Client, int) {
	ep, cli, code := c.cf.registryClient(c.name, *c.centers, c.stderr)
	if code != 0 {
		return nil, nil, code
	}
	s := &session{ep: ep}
	s.ctx, s.cancel = c.cf.ctx()
	return s, cli, 0
}

// queryNode is the start of a command of the form "NAME [flags] ADDR"
// (client flags and -json): it parses args and opens a session with ADDR.
// req is the size of the command's largest request, header included, when
// the arguments fix it (0: none to check): past -max-datagram, the command
// ends before any call (pastMaxDatagram). When ok is false the command
// ends with status code (0 for -h); otherwise the caller closes the
// session.
func queryNode(name string, args []string, stderr io.Writer, req int) (c *command, s *session, code int, ok bool) {
	c = newCommand(name, "ADDR", stderr, withClient|withJSON)
	pos, code, ok := c.parse(args, nargs(1), "want ADDR")
	if !ok {
		return c, nil, code, false
	}
	s, code = c.dial(pos[0])
	if code == 0 && req > *c.cf.maxDg {
		s.close()
		return c, nil, c.pastMaxDatagram(req, "header, cursor and the padding that lets the node answer a page"), false
	}
	return c, s, code, code == 0
}

// pastMaxDatagram ends a command whose request makes n bytes, header
// included, past -max-datagram; what says what is in it. The engine would
// refuse it with EMSGSIZE, so it is not sent. It is a usage error (exit
// 2), like every bound rfcctl checks before a call: the same arguments
// fail the same way whatever the node does. The message names the size,
// the bound and the error number.
func (c *command) pastMaxDatagram(n int, what string) int {
	return c.usageError("a %d-byte request (%s), past -max-datagram %d: EMSGSIZE", n, what, *c.cf.maxDg)
}

// queryFailed prints "rfcctl: NAME ADDR: ERROR" and returns exit status 1.
func (c *command) queryFailed(s *session, err error) int {
	fmt.Fprintf(c.stderr, "rfcctl: %s %s: %s\n", c.name, s.dst, errName(err))
	return 1
}

// callFailed prints the name of a call's error on stdout and returns exit
// status 1.
func callFailed(stdout io.Writer, err error) int {
	fmt.Fprintln(stdout, errName(err))
	return 1
}

// explained is callFailed with why, the bound or rule the call broke,
// after the error's name; callFailed itself when why is "".
func explained(stdout io.Writer, err error, why string) int {
	if why == "" {
		return callFailed(stdout, err)
	}
	fmt.Fprintf(stdout, "%s: %s\n", errName(err), why)
	return 1
}

// printed ends the step of a command that fetched v: on err it prints the
// error's name on stdout and the command ends with status 1; with -json it
// prints v as JSON and the command ends with status 0. done is false when
// the caller is to print v as text.
func (c *command) printed(stdout io.Writer, v any, err error) (code int, done bool) {
	if err != nil {
		return callFailed(stdout, err), true
	}
	if *c.asJSON {
		printJSON(stdout, v)
		return 0, true
	}
	return 0, false
}

// printJSON prints v as one line of JSON.
func printJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(w, string(b))
}

// newTable returns the tab writer of the commands' tables: columns padded
// by two spaces.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
