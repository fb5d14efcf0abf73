package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastcall/node/dispatch"
	"fastcall/node/route"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestCommandFlagValues: a flag value the command cannot use is a usage
// error (exit 2) that names the flag (a 65th -p: the parameter limit),
// found before any call is made. Each
// of these exited 1 printing only the error number the client library or
// the node returned (EINVAL), or, for -expect on put without -cas, was
// ignored and the put made unconditionally.
func TestCommandFlagValues(t *testing.T) {
	const addr = "127.0.0.1:9"
	cases := []struct {
		args []string
		said string
	}{
		{[]string{"audit", "-call", "ns-put", "-limit", "99999999", addr}, "-limit"},
		{[]string{"audit", "-call", "ns-put", "-client", "nonsense", addr}, "-client"},
		// -since is a duration ago: a negative one asked the router
		// for calls started in the future (none, exit 0).
		{[]string{"audit", "-call", "ns-put", "-since", "-10m", addr}, "-since"},
		{[]string{"reg", "-c", addr, "-ttl", "-1s", "put", "k", "v"}, "-ttl"},
		{[]string{"reg", "-c", addr, "-expect", "5", "put", "k", "v"}, "-expect"},
		{[]string{"reg", "-c", addr, "-for", "-1s", "watch", "kv/"}, "-for"},
		{[]string{"reg", "-c", addr + "," + addr + "," + addr, "ls"}, "-c"},
		{[]string{"route", "-c", addr + "," + addr + "," + addr, "ls"}, "-c"},
		{[]string{"dispatch", "-resource", "r", "-targets", addr, "-call", "ping", "-deadline", "-1s", "submit", addr}, "-deadline"},
		// Port 0 names no node: a call to it waited out -t (or the
		// dispatcher's deadline, or every router forward) for a reply
		// that could not come.
		{[]string{"call", "127.0.0.1:0", "ping"}, "port 0"},
		{[]string{"ping", "-c", "1", "127.0.0.1:0"}, "port 0"},
		{[]string{"stats", "127.0.0.1:0"}, "port 0"},
		{[]string{"calls", "127.0.0.1:0"}, "port 0"},
		{[]string{"members", "127.0.0.1:0"}, "port 0"},
		{[]string{"bench", "-d", "1s", "127.0.0.1:0"}, "port 0"},
		{[]string{"audit", "-call", "ns-put", "127.0.0.1:0"}, "port 0"},
		{[]string{"reg", "-c", addr + ",127.0.0.1:0", "ls"}, "port 0"},
		{[]string{"route", "-c", "127.0.0.1:0", "ls"}, "port 0"},
		{[]string{"route", "-c", addr, "cluster", "c", "active=127.0.0.1:0"}, "port 0"},
		{[]string{"dispatch", "-resource", "r", "-targets", addr + ",127.0.0.1:0", "-call", "ping", "submit", addr}, "port 0"},
		{[]string{"dispatch", "status", "127.0.0.1:0", "1"}, "port 0"},
		// A ttl past the centers' bound (365 days) and a submit whose
		// targets do not fit one datagram printed only EINVAL or
		// EMSGSIZE, not the limit.
		{[]string{"reg", "-c", addr, "-ttl", "8761h", "put", "k", "v"}, "registry.MaxTTL (8760h0m0s, 365 days): EINVAL"},
		// So did a key past registry.MaxKeyLen and a value past the
		// entry bound of one datagram.
		{[]string{"reg", "-c", addr, "put", strings.Repeat("k", 510), "v"}, "registry.MaxKeyLen"},
		{[]string{"reg", "-c", addr, "del", strings.Repeat("k", 510)}, "registry.MaxKeyLen"},
		{[]string{"reg", "-c", addr, "put", "k", strings.Repeat("v", 1400)}, "past registry.MaxEntry"},
		{[]string{"dispatch", "-resource", "r", "-targets", manyTargets(100), "-call", "ping", "submit", addr}, "past -max-datagram 1400: EMSGSIZE"},
		// shm's lock wait bound: 0 or less waited for the lock without
		// a bound; -n 0 or less still dumped one entry.
		{[]string{"shm", "-t", "0", "stat", "/nonexistent/map"}, "-t"},
		{[]string{"shm", "-t", "-1s", "get", "/nonexistent/map", "k"}, "-t"},
		{[]string{"shm", "-n", "0", "dump", "/nonexistent/map"}, "-n"},
		{[]string{"shm", "-n", "-1", "dump", "/nonexistent/map"}, "-n"},
	}
	tooMany := []string{"call", addr, "echo"}
	for i := 0; i <= wire.MaxParams; i++ {
		tooMany = append(tooMany, "-p", "i64:1")
	}
	cases = append(cases, struct {
		args []string
		said string
	}{tooMany, "at most 64 parameters"})
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := runCommand(c.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.said) {
			t.Errorf("rfcctl %q: exit %d, said %q%q, want exit 2 naming %s", c.args, code, stdout.String(), stderr.String(), c.said)
		}
	}
}

// manyTargets returns n distinct target addresses, comma-separated.
func manyTargets(n int) string {
	ts := make([]string, n)
	for i := range ts {
		ts[i] = fmt.Sprintf("10.0.0.1:%d", 10000+i)
	}
	return strings.Join(ts, ",")
}

// TestDispatchPastRemoteBounds: a submit that fits one datagram but
// passes a bound of an rfcd dispatcher is refused, and rfcctl says which
// bound that is, not the error number alone (exit 1): more targets than
// a remote submit may name (dispatch.DefaultMaxRemoteTargets, ENOSPC), a
// resource past dispatch.MaxResource or a deadline past
// dispatch.DefaultMaxRemoteDeadline (EINVAL; before, a bare EINVAL), a
// call of fastcall's own services or a target not on the dispatcher's
// list (EPERM; before, a bare EPERM).
func TestDispatchPastRemoteBounds(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "disp.json")
	os.WriteFile(cfg, []byte(`{"insecure": true, "roles": ["dispatcher"], "dispatcher": {"targets": ["127.0.0.1:9"]}}`), 0o600)
	disp := startNode(t, "-config", cfg)
	n := dispatch.DefaultMaxRemoteTargets + 1
	long := strings.Repeat("r", dispatch.MaxResource+1)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-resource", "r", "-targets", manyTargets(n), "-call", "counter"},
			fmt.Sprintf("ENOSPC: %d targets, past the dispatcher's MaxRemoteTargets (%d in rfcd)", n, dispatch.DefaultMaxRemoteTargets)},
		{[]string{"-resource", long, "-targets", "127.0.0.1:9", "-call", "counter"},
			fmt.Sprintf("EINVAL: a resource of %d bytes, past dispatch.MaxResource (%d)", len(long), dispatch.MaxResource)},
		{[]string{"-resource", "r", "-targets", "127.0.0.1:9", "-deadline", "30s", "-call", "counter"},
			fmt.Sprintf("EINVAL: -deadline 30s, past the dispatcher's MaxRemoteDeadline (%v in rfcd)", dispatch.DefaultMaxRemoteDeadline)},
		{[]string{"-resource", "r", "-targets", "127.0.0.1:9", "-call", "0x0104"},
			fmt.Sprintf("EPERM: call 0x0104 is one of fastcall's own services (0x%04x up to wire.CallToolBase, 0x%04x)", wire.CallHeartbeatBase, wire.CallToolBase)},
		{[]string{"-resource", "r", "-targets", "127.0.0.1:10", "-call", "counter"},
			"EPERM: a target not on the dispatcher's list of targets"},
	} {
		args := append(append([]string{"dispatch"}, c.args...), "submit", disp)
		out, code := rfcctl(t, args...)
		if code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("rfcctl %.120q: exit %d, output %q, want exit 1 and %q", args, code, out, c.want)
		}
	}
}

// TestClientFlagValues: a deadline that is not positive, or a datagram
// limit the engine refuses, is a usage error (exit 2) naming the flag, in
// every command that calls a node, before any call is made. (-t 0 was
// taken, and every call failed at once with ECANCELED, exit 1;
// -max-datagram out of range exited 1 on the engine's refusal.)
func TestClientFlagValues(t *testing.T) {
	const addr = "127.0.0.1:9"
	cmds := [][]string{
		{"call", addr, "ping"},
		{"ping", "-c", "1", addr},
		{"stats", addr},
		{"calls", addr},
		{"members", addr},
		{"reg", "-c", addr, "ls"},
	}
	bad := []struct {
		flags []string
		said  string
	}{
		{[]string{"-t", "0"}, "-t"},
		{[]string{"-t", "-1s"}, "-t"},
		{[]string{"-max-datagram", "100"}, "-max-datagram"},
		{[]string{"-max-datagram", "70000"}, "-max-datagram"},
	}
	for _, c := range cmds {
		for _, b := range bad {
			args := append(append([]string{c[0]}, b.flags...), c[1:]...)
			var stdout, stderr bytes.Buffer
			code := runCommand(args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), b.said) {
				t.Errorf("rfcctl %q: exit %d, said %q%q, want exit 2 naming %s", args, code, stdout.String(), stderr.String(), b.said)
			}
		}
	}
}

// TestPastMaxDatagramIsUsageError: a request that the command's
// arguments make longer than -max-datagram is refused before it is sent,
// in every command that checks it, the same way: a usage error (exit 2)
// naming the request's size, the bound and EMSGSIZE. The node, a socket
// here, receives nothing. (call, stats and calls exited 1; reg put and
// dispatch submit 2.)
func TestPastMaxDatagramIsUsageError(t *testing.T) {
	node := rfctest.UDP(t)
	addr := node.LocalAddr().String()
	var p wire.Params
	p.Reset(make([]byte, wire.MaxDatagram))
	p.Bytes(make([]byte, wire.DefaultMaxDatagram-wire.HeaderSize))
	callLen := wire.HeaderSize + p.Len()
	pageLen := wire.HeaderSize + wire.ParamHdrSize + wire.SizeFixed8 + wire.ParamHdrSize + len(statsPad) // cursor, padding
	ts := manyTargets(100)
	op := dispatch.Op{Resource: "r", Kind: dispatch.KindUpdate, Call: dispatch.CallOf(rfc.CallPing, nil)} // -kind update, the default
	addrs, _ := dispatch.ParseTargets(ts)
	for _, a := range addrs {
		op.Targets = append(op.Targets, dispatch.Target{Addr: a})
	}
	for _, c := range []struct {
		args []string
		said string
	}{
		{[]string{"call", addr, "echo", "-p", "bytes:" + strings.Repeat("v", wire.DefaultMaxDatagram-wire.HeaderSize)},
			fmt.Sprintf("a %d-byte request (header and parameters), past -max-datagram %d: EMSGSIZE", callLen, wire.DefaultMaxDatagram)},
		{[]string{"stats", "-max-datagram", "400", addr}, fmt.Sprintf("a %d-byte request (", pageLen) + "header, cursor and the padding that lets the node answer a page), past -max-datagram 400: EMSGSIZE"},
		{[]string{"calls", "-max-datagram", "400", addr}, fmt.Sprintf("a %d-byte request (", pageLen) + "header, cursor and the padding that lets the node answer a page), past -max-datagram 400: EMSGSIZE"},
		{[]string{"dispatch", "-resource", "r", "-targets", ts, "-call", "ping", "submit", addr},
			fmt.Sprintf("a %d-byte request (submit of 100 targets), past -max-datagram %d: EMSGSIZE", dispatch.SubmitSize(&op), wire.DefaultMaxDatagram)},
		{[]string{"reg", "-c", addr, "put", "k", strings.Repeat("v", wire.DefaultMaxDatagram)}, "past registry.MaxEntry"},
	} {
		var stdout, stderr bytes.Buffer
		code := runCommand(c.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.said) {
			t.Errorf("rfcctl %.60q: exit %d, said %q%q, want exit 2 and %q", c.args, code, stdout.String(), stderr.String(), c.said)
		}
	}
	// Nothing is in flight once the commands returned: a datagram any
	// of them sent is in the socket's buffer already.
	node.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if n, _, err := node.ReadFrom(make([]byte, wire.MaxDatagram)); err == nil {
		t.Errorf("the node received a %d-byte datagram", n)
	}
}

// TestRouteNamesRules: a mount prefix or sub-cluster name the route
// package would not route by is refused EINVAL (exit 1) naming the rule
// and its bound (route.MaxPathLen, route.MaxClusterName; for a prefix
// whose key the registry would refuse, registry.MaxKeyLen), and too many
// members of a sub-cluster is a usage error naming route.MaxMembers.
// Before, the first printed a bare EINVAL and the last no bound.
func TestRouteNamesRules(t *testing.T) {
	const addr = "127.0.0.1:9"
	members := []string{"cluster", "data"} // one more than route.MaxMembers, each address once
	for i := 0; i <= route.MaxMembers; i++ {
		members = append(members, fmt.Sprintf("standby=127.0.0.1:%d", i+1))
	}
	for _, c := range []struct {
		args []string
		code int
		said string
	}{
		{[]string{"add", "/" + strings.Repeat("p", route.MaxPathLen), "data"}, 1, "EINVAL: mount prefix of 1025 bytes"},
		{[]string{"add", "/data/", "data"}, 1, "no trailing"},
		// Within route.MaxPathLen, but its key is past what the registry
		// takes: refused here, naming the bound, not a bare EINVAL from
		// the center (or a timeout without one).
		{[]string{"add", "/" + strings.Repeat("p", 600), "data"}, 1, "EINVAL: mount prefix of 601 bytes: its registry key"},
		{[]string{"del", "/" + strings.Repeat("p", 600)}, 1, "registry.MaxKeyLen (512)"},
		{[]string{"del", "data"}, 1, "route.MaxPathLen"},
		{[]string{"add", "/data", strings.Repeat("c", route.MaxClusterName+1)}, 1, "route.MaxClusterName"},
		{[]string{"cluster", "da ta", "active=127.0.0.1:2"}, 1, "route.MaxClusterName"},
		{members, 2, "route.MaxMembers"},
	} {
		args := append([]string{"route", "-c", addr, "-t", "300ms"}, c.args...)
		var stdout, stderr bytes.Buffer
		code := runCommand(args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.said) {
			t.Errorf("rfcctl %.80q: exit %d, said %q%q, want exit %d and %q", args, code, stdout.String(), stderr.String(), c.code, c.said)
		}
	}
}

// TestDispatchStatusPastMaxDatagram: a dispatcher answers a status page
// EMSGSIZE when not even one entry fits the reply; rfcctl dispatch status
// says that -max-datagram bounds the reply (exit 1), not the error number
// alone.
func TestDispatchStatusPastMaxDatagram(t *testing.T) {
	addr := refusingNode(t, dispatch.CallStatus, wire.Schema{wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}, wire.EMSGSIZE)
	var stdout, stderr bytes.Buffer
	code := runCommand([]string{"dispatch", "-max-datagram", "300", "status", addr, "1"}, &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stdout.String(), "EMSGSIZE") || !strings.Contains(stdout.String(), "-max-datagram 300") {
		t.Fatalf("rfcctl dispatch status answered EMSGSIZE: exit %d, output %q%q", code, stdout.String(), stderr.String())
	}
}
