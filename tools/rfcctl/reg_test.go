package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/client"
	"fastcall/node/registry/sdk"
	"fastcall/node/route"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestRegLsPastTombstones: rfcctl reg ls lists every live key of a prefix
// whose first keys are deleted, more of them than one reg-list page
// examines (registry.ListScan): it follows the pages that hold no entry
// to the live keys after them.
func TestRegLsPastTombstones(t *testing.T) {
	addr, cli := startCenter(t)
	ctx := rfctest.Context(t, 60*time.Second)
	dead := registry.ListScan + 50
	for i := 0; i < dead; i++ {
		k := fmt.Sprintf("t/a%04d", i)
		if _, err := cli.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if err := cli.Delete(ctx, k, 0); err != nil {
			t.Fatal(err)
		}
	}
	const live = 40
	for i := 0; i < live; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("t/b%04d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	out, code := rfcctl(t, "reg", "-c", addr, "-json", "ls", "t/")
	var es []client.Entry
	if code != 0 || json.Unmarshal([]byte(out), &es) != nil {
		t.Fatalf("rfcctl reg ls: exit %d, output:\n%s", code, out)
	}
	if len(es) != live || es[0].Key != "t/b0000" || es[live-1].Key != fmt.Sprintf("t/b%04d", live-1) {
		t.Fatalf("rfcctl reg ls listed %d entries, want %d live ones", len(es), live)
	}
}

// TestRegLsManyEmptyPages: rfcctl reg ls follows a listing however many
// empty pages it takes (a center over a prefix of many deleted keys
// answers ListScan keys at a time): a fake center answers pages that hold
// no entry, each after the last, well past any fixed page count, then one
// with the only live key. The command lists that key, and a center whose
// next key does not advance fails the command instead of looping.
func TestRegLsManyEmptyPages(t *testing.T) {
	const emptyPages = 12000
	rec := sdk.AppendRecord(nil, &sdk.Record{Kind: sdk.KindKV, Version: 1, Body: []byte("v")})
	fake := func(t *testing.T, stuck bool) string {
		srv := rfctest.Listen(t, 9, nil)
		err := srv.RegisterCalls([]rfc.CallSpec{{No: registry.CallList, Name: "reg-list", Schema: registry.SchemaList,
			Flags: rfc.Idempotent, H: func(req *rfc.Request, rep *wire.Params) wire.Errno {
				after := req.Param(1).Str()
				n := 0
				if after != "" {
					fmt.Sscanf(strings.TrimPrefix(after, "kv/t/a"), "%d", &n)
					if !stuck {
						n++
					}
				}
				if n < emptyPages {
					rep.Uint64(1)
					rep.String(fmt.Sprintf("kv/t/a%06d", n))
					return wire.OK
				}
				rep.Uint64(0)
				rep.String("")
				rep.String("kv/t/b")
				rep.Bytes(rec)
				return wire.OK
			}}})
		if err != nil {
			t.Fatal(err)
		}
		return srv.Addr().String()
	}
	var out, errOut bytes.Buffer
	code := cmdReg([]string{"-c", fake(t, false), "-t", "120s", "-json", "ls", "t/"}, &out, &errOut)
	var es []client.Entry
	if code != 0 || json.Unmarshal(out.Bytes(), &es) != nil || len(es) != 1 || es[0].Key != "t/b" {
		t.Fatalf("reg ls over %d empty pages: exit %d, listed %d entries, want the one live key; output:\n%s%s",
			emptyPages, code, len(es), out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code = cmdReg([]string{"-c", fake(t, true), "-t", "120s", "ls", "t/"}, &out, &errOut)
	if code == 0 || !strings.Contains(out.String()+errOut.String(), "EPROTO") {
		t.Fatalf("reg ls from a center whose next key does not advance: exit %d, output:\n%s%s", code, out.String(), errOut.String())
	}
}

// TestRegPutEntryBound: rfcctl reg put's own entry bound is the centers':
// a value that makes an entry of exactly registry.MaxEntry is written,
// one byte more is refused before sending, naming the bound.
func TestRegPutEntryBound(t *testing.T) {
	addr, _ := startCenter(t)
	room := registry.MaxEntry(wire.DefaultMaxDatagram) - len(sdk.KVPrefix+"k") - sdk.RecHeaderSize
	if out, code := rfcctl(t, "reg", "-c", addr, "put", "k", strings.Repeat("v", room)); code != 0 || !strings.Contains(out, "OK version") {
		t.Fatalf("reg put of a %d-byte value (an entry of registry.MaxEntry): exit %d, output:\n%s", room, code, out)
	}
	if out, code := rfcctl(t, "reg", "-c", addr, "put", "k", strings.Repeat("v", room+1)); code != 2 || !strings.Contains(out, "past registry.MaxEntry") {
		t.Fatalf("reg put of a %d-byte value: exit %d, output:\n%s", room+1, code, out)
	}
}

// startCenter starts an insecure rfcd whose one role is a registry
// center, and returns its address and a registry client of it.
func startCenter(t *testing.T) (string, *client.Client) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "center.json")
	os.WriteFile(cfg, []byte(`{"insecure": true, "roles": ["center"], "center": {"data_dir": "`+filepath.Join(dir, "data")+`"}}`), 0o600)
	addr := startNode(t, "-config", cfg)
	cli, err := client.NewClient(rfctest.Listen(t, 7, nil), client.DefaultClientConfig(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	return addr, cli
}

// TestRegPrintsHostileText: keys, service names and addresses are written
// by any client of the registry; rfcctl reg ls and reg services, route ls
// and route resolve print them as shm dump does (printable: hex unless
// printable UTF-8), never raw. Before, a key holding a newline and tabs printed a forged row in
// the table, and one holding ESC sent a terminal control sequence to the
// operator's terminal.
func TestRegPrintsHostileText(t *testing.T) {
	addr, cli := startCenter(t)
	ctx := rfctest.Context(t, 10*time.Second)
	for _, k := range []string{"h/a\t1\tforged\nh/forged", "h/\x1b]0;title\x07"} {
		if _, err := cli.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Register(ctx, "hsvc\nforged", "1.2.3.4:5\x1b[2J", nil, 0); err != nil {
		t.Fatal(err)
	}
	// The route table is registry text too: a member's IPv6 zone is any
	// text netip takes, ESC and BEL included.
	tp, st := route.DefaultTablePrefix, route.RegistryMounts{C: cli}
	ms, err := route.ParseMembers([]byte("active=[fe80::1%\x1b[2J\x07]:7000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := route.AddMount(ctx, st, tp, "/h", "hc"); err != nil {
		t.Fatal(err)
	}
	if err := route.AddCluster(ctx, st, tp, "hc", ms); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"reg", "-c", addr, "ls", "h/"}, {"reg", "-c", addr, "services", "hsvc"},
		{"route", "-c", addr, "ls"}, {"route", "-c", addr, "resolve", "/h/x"}} {
		out, code := rfcctl(t, args...)
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		want := map[string]int{
			"ls":       3, // header and the two keys
			"services": 2, // header and the instance
		}[args[3]]
		if args[0] == "route" {
			want = map[string]int{"ls": 5, "resolve": 1}[args[3]] // mounts, blank line, sub-clusters
		}
		if code != 0 || len(lines) != want || strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("rfcctl %q: exit %d, %d lines (want %d), control bytes %v:\n%q", args, code, len(lines), want,
				strings.ContainsAny(out, "\x1b\x07"), out)
		}
	}
}

// TestRegWriteKeysFull: a write of a new key that the centers refuse
// with ENOSPC (their MaxKeys keys held) makes rfcctl reg put and route
// add and cluster name that bound, not print the error number alone,
// which reads as a full disk.
func TestRegWriteKeysFull(t *testing.T) {
	addr := refusingNode(t, registry.CallPut, registry.SchemaPut, wire.ENOSPC)
	for _, args := range [][]string{
		{"reg", "-c", addr, "put", "k", "v"},
		{"reg", "-c", addr, "-cas", "put", "k", "v"},
		{"route", "-c", addr, "add", "/data", "data"},
		{"route", "-c", addr, "cluster", "data", "active=127.0.0.1:7001"},
	} {
		var out, errOut bytes.Buffer
		code := runCommand(args, &out, &errOut)
		if code != 1 || !strings.HasPrefix(out.String(), "ENOSPC") || !strings.Contains(out.String(), "MaxKeys") {
			t.Errorf("rfcctl %q: exit %d, output %q%q, want exit 1 naming MaxKeys", args, code, out.String(), errOut.String())
		}
	}
}

// TestRegWatchRefused: centers that refuse rfcctl reg watch's
// subscription (ENOSPC: past their bounds on push streams) make the
// command fail (exit 1) naming those bounds. Before, the refusal was
// seen only by the watch's Err: the command printed nothing for -for and
// ended 0, as if no key had changed.
func TestRegWatchRefused(t *testing.T) {
	addr := refusingNode(t, registry.CallSubscribe, registry.SchemaSubscribe, wire.ENOSPC)
	var out, errOut bytes.Buffer
	code := cmdReg([]string{"-c", addr, "-for", "2s", "watch", "t/"}, &out, &errOut)
	if code != 1 || !strings.HasPrefix(out.String(), "ENOSPC") || !strings.Contains(out.String(), "MaxStreamsPerIP") {
		t.Fatalf("reg watch refused ENOSPC: exit %d, output %q%q, want exit 1 naming the stream bounds", code, out.String(), errOut.String())
	}
}

// refusingNode starts a stand-in for a node (a registry center, a
// dispatcher) that answers every call number no (of schema) with e, and
// returns its address.
func refusingNode(t *testing.T, no uint16, schema wire.Schema, e wire.Errno) string {
	t.Helper()
	srv := rfctest.Listen(t, 9, nil)
	if err := srv.Register(no, "refused", schema, 0, func(*rfc.Request, *wire.Params) wire.Errno { return e }); err != nil {
		t.Fatal(err)
	}
	return srv.Addr().String()
}
