// Command rfcctl drives fastcall nodes from the command line: make any
// call, ping and load a node, read its statistics, call table and
// membership view, use the registry's store and a node's shared-memory
// map, manage a router's mount table and query its audit trail, submit
// operations to a dispatcher, and run the demo. docs/RFCD.md lists the
// commands.
//
// Conventions: every subcommand takes -h; -json where the output is data;
// exit status 0 on success, 1 when a call failed, 2 on a usage error;
// error numbers are printed by name, followed by the bound that was hit
// where the number alone would leave the operator to guess which; text a
// node or the registry supplies is printed through printable.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"fastcall/wire"
)

// subcommand is one rfcctl verb.
type subcommand struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]subcommand{
	"call":     {"make one call with typed parameters", cmdCall},
	"ping":     {"measure round trips to a node, like ping(8)", cmdPing},
	"stats":    {"print a node's call counters", cmdStats},
	"calls":    {"list a node's call numbers: name, parameters, flags (like rpcinfo)", cmdCalls},
	"demo":     {"start nodes on loopback and walk through the features", cmdDemo},
	"members":  {"print a node's membership view (state, incarnation, last heard)", cmdMembers},
	"route":    {"the router's mount table: ls, add, del, cluster, resolve", cmdRoute},
	"audit":    {"query a router's audit trail by call name", cmdAudit},
	"dispatch": {"submit an operation to a dispatcher, read its status", cmdDispatch},
	"reg":      {"registry: key/value ls, get, put, del; services; watch", cmdReg},
	"shm":      {"inspect a node's shared-memory map file: stat, dump, get, verify", cmdShm},
	"bench":    {"load a node with calls and report throughput and latency", cmdBench},
	"version":  {"print the version", cmdVersion},
}

// Version is the rfcctl version.
const Version = "0.1.0"

func main() {
	os.Exit(runCommand(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: rfcctl COMMAND [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrfcctl COMMAND -h shows a command's flags.")
}

func runCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "rfcctl: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	c := newCommand("version", "", stderr, 0)
	if _, code, ok := c.parse(args, nargs(0), "no arguments expected"); !ok {
		return code
	}
	fmt.Fprintf(stdout, "rfcctl %s (protocol version %d)\n", Version, wire.Version)
	return 0
}
