package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastcall/node/dispatch"
	"fastcall/node/heartbeat"
	"fastcall/node/route"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/shm"
	"fastcall/wire"
)

var binDir string

// TestMain builds rfcd and rfcctl once; the tests run the built binaries.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rfcctl-test")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, pkg := range []string{"fastcall/tools/rfcd", "fastcall/tools/rfcctl"} {
		out, err := exec.Command("go", "build", "-o", dir, pkg).CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			panic("build " + pkg + ": " + err.Error() + "\n" + string(out))
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startNode runs rfcd on a loopback port with log level error and returns
// its address.
func startNode(t *testing.T, args ...string) string {
	t.Helper()
	return startRfcd(t, append([]string{"-addr", "127.0.0.1:0", "-log-level", "error"}, args...)...)[2]
}

// startRfcd runs rfcd with exactly args and returns the fields of its
// first line ("rfcd: listening ADDR node N incarnation I ..."); the rest of
// its output is discarded. It is stopped with SIGTERM when the test ends.
func startRfcd(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "rfcd"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("rfcd printed nothing")
	}
	f := strings.Fields(sc.Text())
	if len(f) < 3 {
		t.Fatalf("rfcd said %q", sc.Text())
	}
	go io.Copy(io.Discard, out)
	return f
}

func rfcctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "rfcctl"), args...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return buf.String(), code
}

func TestSubcommands(t *testing.T) {
	addr := startNode(t, "-node", "5", "-insecure")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"call add", []string{"call", addr, "add", "-p", "i64:40", "-p", "i64:2"}, 0, "i64:42"},
		{"call by number", []string{"call", addr, "0x0800", "-p", "bytes:hi"}, 0, "bytes:6869"},
		{"call json", []string{"call", "-json", addr, "counter"}, 0, `"errno":"OK"`},
		{"call EINVAL", []string{"call", addr, "add", "-p", "str:x"}, 1, "EINVAL"},
		{"call ENOCALL", []string{"call", addr, "0x7777"}, 1, "ENOCALL"},
		{"call EFAULT", []string{"call", addr, "fault"}, 1, "EFAULT"},
		{"call timeout", []string{"call", "-t", "100ms", "127.0.0.1:9", "ping"}, 1, "ETIMEDOUT"},
		{"call bad param", []string{"call", addr, "add", "-p", "i64:x"}, 2, "not an int64"},
		{"call bad utf8", []string{"call", addr, "0x0800", "-p", "str:\xff"}, 2, "not valid UTF-8"},
		{"call bad addr", []string{"call", "nowhere", "ping"}, 2, "want IP:PORT"},
		{"dispatch bad addr", []string{"dispatch", "status", "nowhere", "1"}, 2, "want IP:PORT"},
		{"audit bad addr", []string{"audit", "-call", "ns-put", "nowhere"}, 2, "want IP:PORT"},
		{"call bad name", []string{"call", addr, "nosuch"}, 2, "not a known name"},
		{"call missing", []string{"call", addr}, 2, "want ADDR CALL"},
		{"ping", []string{"ping", "-c", "3", "-i", "1ms", addr}, 0, "3 sent, 3 received"},
		{"ping json", []string{"ping", "-json", "-c", "2", "-i", "1ms", addr}, 0, `"received":2`},
		{"ping lost", []string{"ping", "-c", "1", "-t", "50ms", "127.0.0.1:9"}, 1, "1 sent, 0 received"},
		{"stats", []string{"stats", addr}, 0, "ping"},
		{"bench", []string{"bench", "-c", "2", "-d", "300ms", addr}, 0, "calls/s"},
		{"bench json", []string{"bench", "-json", "-c", "2", "-d", "200ms", "-call", "add", addr}, 0, `"p99_us"`},
		{"bench bad", []string{"bench", "-c", "0", addr}, 2, "bench: want"},
		{"version", []string{"version"}, 0, "(protocol version " + strconv.Itoa(wire.Version) + ")"},
		{"help", []string{"call", "-h"}, 0, "usage: rfcctl call"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"bad flag", []string{"ping", "-x", addr}, 2, "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := rfcctl(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d), output:\n%s\nwant it to contain %q", code, tc.code, out, tc.want)
			}
		})
	}
	out, code := rfcctl(t, "stats", "-json", addr)
	var st struct {
		Engine []struct {
			Name  string
			Value uint64
		}
		Calls []struct {
			Name   string
			Served uint64
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Calls) == 0 {
		t.Fatalf("stats -json: %d %s", code, out)
	}
}

func TestRfcdFlags(t *testing.T) {
	dir := t.TempDir()
	openKey := filepath.Join(dir, "open.key")
	os.WriteFile(openKey, []byte("0123456789abcdef0123456789"), 0o644)
	os.Chmod(openKey, 0o644)
	goodKey := filepath.Join(dir, "good.key")
	os.WriteFile(goodKey, []byte("0123456789abcdef0123456789"), 0o600)
	badCfg := filepath.Join(dir, "bad.json")
	os.WriteFile(badCfg, []byte(`{"insecure": true, "heartbeat": {"interval": 5}}`), 0o600)
	unknownCfg := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknownCfg, []byte(`{"insecure": true, "colour": "blue"}`), 0o600)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-workers", "-1", "-insecure"}, 2, "engine.workers"},
		{[]string{}, 2, "cluster key file is required"},
		{[]string{"-key", openKey, "-log-level", "error"}, 2, "group or others"},
		{[]string{"-key", goodKey, "-insecure"}, 2, "insecure: excludes key_file"},
		{[]string{"-insecure", "-roles", "worker"}, 2, "heartbeat.members"},
		{[]string{"-insecure", "-roles", "chef"}, 2, "unknown role"},
		{[]string{"-insecure", "-addr", "nowhere"}, 2, "addr: want IP:PORT"},
		{[]string{"-log-level", "loud", "-insecure"}, 2, "log_level"},
		{[]string{"-key", "/nonexistent"}, 2, "key_file"},
		{[]string{"-config", "/nonexistent.json"}, 2, "no such file"},
		{[]string{"-config", badCfg}, 2, "heartbeat.interval"},
		{[]string{"-insecure", "-addr", "127.0.0.1:0", "-members", "127.0.0.1:9", "-hb-interval", "500us"}, 2, "heartbeat.interval"},
		{[]string{"-insecure", "-addr", "127.0.0.1:0", "-max-datagram", "70000"}, 2, "engine.max_datagram = 70000"},
		{[]string{"-config", unknownCfg}, 2, "unknown field"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-h"}, 0, "usage: rfcd"},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "rfcd"), tc.args...)
		out, err := cmd.CombinedOutput()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("rfcd %v: exit %d, output %q", tc.args, code, out)
		}
	}
}

func TestShmCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.shm")
	m, err := shm.Create(path, 1<<20, shm.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"svc/db/1", "10.0.0.1:7000"}, {"svc/db/2", "10.0.0.2:7000"}, {"svc/web/1", "10.0.0.3:80"}} {
		if err := m.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"shm", "stat", path}, 0, "keys        3"},
		{[]string{"shm", "verify", path}, 0, ": ok"},
		{[]string{"shm", "get", path, "svc/db/2"}, 0, "10.0.0.2:7000"},
		{[]string{"shm", "get", path, "svc/none"}, 1, "ENOENT"},
		{[]string{"shm", "dump", path, "svc/db/"}, 0, "svc/db/1\t10.0.0.1:7000\nsvc/db/2\t10.0.0.2:7000\n"},
		{[]string{"shm", "-json", "dump", path}, 0, `"svc/web/1"`},
		{[]string{"shm", "stat", "/nonexistent/file"}, 1, "no such file"},
		{[]string{"shm", "frob", path}, 2, "unknown verb"},
	} {
		out, code := rfcctl(t, tc.args...)
		if code != tc.code || !strings.Contains(out, strings.ReplaceAll(strings.ReplaceAll(tc.want, "\\t", "\t"), "\\n", "\n")) {
			t.Errorf("rfcctl %v: exit %d, output:\n%s", tc.args, code, out)
		}
	}
}

// TestKeyed runs a node with a cluster key: rfcctl with the key gets
// answers, without it gets none.
func TestKeyed(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k")
	os.WriteFile(key, []byte("fastcall-test-cluster-key-0123456"), 0o600)
	addr := startNode(t, "-key", key)
	if out, code := rfcctl(t, "call", "-key", key, addr, "add", "-p", "i64:1", "-p", "i64:2"); code != 0 || !strings.Contains(out, "i64:3") {
		t.Fatalf("keyed call: %d %s", code, out)
	}
	if out, code := rfcctl(t, "call", "-t", "200ms", addr, "ping"); code != 1 || !strings.Contains(out, "ETIMEDOUT") {
		t.Fatalf("unkeyed call: %d %s", code, out)
	}
	if out, code := rfcctl(t, "stats", "-key", key, addr); code != 0 || !strings.Contains(out, "unauthenticated") {
		t.Fatalf("stats: %d %s", code, out)
	}
}

// TestDemo runs the whole demo, as `make demo` does.
func TestDemo(t *testing.T) {
	start := time.Now()
	out, code := rfcctl(t, "demo", "-rfcd", filepath.Join(binDir, "rfcd"))
	if code != 0 || strings.Contains(out, "[FAIL]") {
		t.Fatalf("demo exit %d:\n%s", code, out)
	}
	t.Logf("demo took %s", time.Since(start))
}

// TestMembersAndReg runs a registry center with a heartbeat member list
// and drives it with rfcctl members and reg.
func TestMembersAndReg(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "center.json")
	os.WriteFile(cfg, []byte(`{"insecure": true, "roles": ["center"], "center": {"data_dir": "`+filepath.Join(dir, "data")+`"},
		"heartbeat": {"members": ["127.0.0.1:9"], "interval": "100ms"}}`), 0o600)
	addr := startNode(t, "-config", cfg)
	c := []string{"-c", addr}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"members", addr}, 0, "127.0.0.1:9"},
		{[]string{"members", "-json", addr}, 0, `"addr":"127.0.0.1:9"`},
		{append([]string{"reg"}, append(c, "put", "mount/a", "cluster-a")...), 0, "OK version"},
		{append([]string{"reg"}, append(c, "get", "mount/a")...), 0, "cluster-a"},
		{append([]string{"reg"}, append(c, "-cas", "put", "mount/a", "again")...), 1, "ECONFLICT"},
		{append([]string{"reg"}, append(c, "ls", "mount/")...), 0, "mount/a"},
		{append([]string{"reg"}, append(c, "services")...), 0, "service"},
		// watch takes a namespace prefix (kv/ for the key/value store) and
		// starts with the entries present.
		{append([]string{"reg"}, append(c, "-for", "300ms", "watch", "kv/mount/")...), 0, "put kv/mount/a version"},
		{append([]string{"reg"}, append(c, "del", "mount/a")...), 0, "OK"},
		{append([]string{"reg"}, append(c, "get", "mount/a")...), 1, "ENOENT"},
		{[]string{"reg", "ls"}, 2, "want -c CENTERS"},
		{append([]string{"reg"}, append(c, "frob")...), 2, "unknown verb"},
	}
	for _, s := range steps {
		out, code := rfcctl(t, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("rfcctl %v: exit %d, output:\n%s", s.args, code, out)
		}
	}
}

// TestRouteAuditDispatch runs a center, a member, a router and a
// dispatcher, and drives them with rfcctl route, call, audit and dispatch.
func TestRouteAuditDispatch(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	center := startNode(t, "-config", write("center.json", `{"insecure": true, "roles": ["center"], "center": {"data_dir": "`+filepath.Join(dir, "c")+`", "fsync": "never"}}`))
	member := startNode(t, "-config", write("member.json", `{"insecure": true, "roles": ["member"], "member": {"active": true}}`))
	router := startNode(t, "-config", write("router.json", `{"insecure": true, "roles": ["router"], "registry": {"centers": ["`+center+`"]},
		"router": {"audit_dir": "`+filepath.Join(dir, "audit")+`"}}`))
	disp := startNode(t, "-config", write("disp.json", `{"insecure": true, "roles": ["dispatcher"], "registry": {"centers": ["`+center+`"]},
		"dispatcher": {"targets": ["`+member+`", "`+router+`"]}}`))
	c := []string{"-c", center}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{append(append([]string{"route"}, c...), "cluster", "data", "active="+member), 0, "OK"},
		{append(append([]string{"route"}, c...), "add", "/data", "data"), 0, "OK"},
		{append(append([]string{"route"}, c...), "ls"), 0, "/data"},
		{append(append([]string{"route"}, c...), "resolve", "/data/x/y"), 0, "sub-cluster data, active " + member},
		{append(append([]string{"route"}, c...), "resolve", "/nowhere"), 1, "ENOENT"},
		{append(append([]string{"route"}, c...), "cluster", "bad", "leader=1.2.3.4:5"), 2, "members"},
	}
	for _, s := range steps {
		out, code := rfcctl(t, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Fatalf("rfcctl %v: exit %d, output:\n%s", s.args, code, out)
		}
	}
	// The router picks the table up by subscription.
	var out string
	var code int
	for i := 0; i < 100; i++ {
		if out, code = rfcctl(t, "call", router, "0x0410", "-p", "str:/data/k", "-p", "bytes:v1"); code == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("routed put: %d %s", code, out)
	}
	steps = []struct {
		args []string
		code int
		want string
	}{
		{[]string{"audit", router, "-call", "ns-put"}, 0, "/data/k"},
		{[]string{"audit", "-json", router, "-call", "ns-put", "-since", "1h"}, 0, `"Name":"ns-put"`},
		{[]string{"call", router, "0x0411", "-p", "str:/data/k"}, 0, "OK rtt"},
		{[]string{"audit", router, "-call", "ns-get"}, 0, `str:"/data/k"`},
		{[]string{"audit", router}, 2, "-call NAME"},
		{[]string{"dispatch", "submit", disp, "-resource", "r1", "-targets", member + "," + router, "-call", "add", "-p", "i64:1", "-p", "i64:2"}, 0, "2/2 targets done, 0 failed"},
		{[]string{"dispatch", "status", disp, "999"}, 1, "ENOENT"},
		{[]string{"dispatch", "submit", disp, "-resource", "r1", "-kind", "frob", "-targets", member, "-call", "ping"}, 2, "read, update or delete"},
	}
	var opID string
	for _, s := range steps {
		out, code := rfcctl(t, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("rfcctl %v: exit %d, output:\n%s", s.args, code, out)
		}
		if m := regexp.MustCompile(`operation ([0-9]+)`).FindStringSubmatch(out); m != nil && opID == "" {
			opID = m[1] // the id the dispatcher gave the first submit
		}
	}
	if out, code := rfcctl(t, "dispatch", "status", disp, opID); code != 0 || !strings.Contains(out, "operation "+opID+" on r1") {
		t.Errorf("rfcctl dispatch status %s: exit %d, output:\n%s", opID, code, out)
	}
}

// TestAuditPrintsHostileText: a router (or anyone answering in its
// place in checksum mode) sends the audit records rfcctl audit prints;
// their call name, sub-cluster, parameters and addresses (an IPv6 zone
// is any text) are printed as reg ls prints keys (printable), never raw, while the quoted parameters of an
// honest record stay text. Before, a name holding a newline printed a
// forged row, and ESC and BEL reached the operator's terminal. A record
// with no destination prints "-", as the audit file has it, not
// "invalid AddrPort".
func TestAuditPrintsHostileText(t *testing.T) {
	line := func(client, name, cluster, dest, params string) string {
		return strings.Join([]string{"2026-01-01T00:00:00.000000Z", "1", "2", "1", client, "1", "1", "0x0410",
			name, cluster, dest, "OK", "1", "-", params}, "\t")
	}
	// An IPv6 zone is any text netip takes, ESC and BEL included.
	lines := []string{line("1.2.3.4:5", "ns-put", "data", "-", `str:"/data/k" bytes:7631`),
		line("1.2.3.4:5", "ns-put\n00:00:00.000000  forged", "c\x1b[2J", "-", "str:\"x\" \x1b]0;title\x07"),
		line("[fe80::1%\x1b[2J\x07]:5", "ns-put", "data", "[fe80::2%\x1b[2J]:6", "-")}
	fake := fakeRouter(t, func(_ *rfc.Request, rep *wire.Params) wire.Errno {
		rep.Uint64(0)
		rep.Uint64(0)
		for _, l := range lines {
			rep.String(l)
		}
		return wire.OK
	})
	out, code := rfcctl(t, "audit", fake, "-call", "ns-put")
	n := len(strings.Split(strings.TrimRight(out, "\n"), "\n"))
	bad := strings.ContainsAny(out, "\x1b\x07")
	if code != 0 || n != 1+len(lines) || bad || !strings.Contains(out, `str:"/data/k" bytes:7631`) ||
		strings.Contains(out, "invalid") {
		t.Fatalf("rfcctl audit: exit %d, %d lines (want %d), control bytes %v:\n%q", code, n, 1+len(lines), bad, out)
	}
}

// TestMembersPrintsHostileAddr: a node (or anyone answering in its place
// in checksum mode) names its members as it likes, and an IPv6 zone is
// any text netip takes: rfcctl members prints each address through
// printable. Before, ESC and BEL of a zone reached the terminal.
func TestMembersPrintsHostileAddr(t *testing.T) {
	fake := rfctest.Listen(t, 9, nil)
	if err := fake.Register(heartbeat.CallMembers, "members", wire.Schema{wire.TypeUint64, wire.TypeBytes}, rfc.Idempotent, func(_ *rfc.Request, rep *wire.Params) wire.Errno {
		rep.Uint64(0) // last page
		rep.Uint64(9)
		rep.Uint64(1)
		for _, a := range []string{"127.0.0.1:7001", "[fe80::1%\x1b[2J\x07]:7002"} {
			rep.String(a)
			rep.Uint64(3)
			rep.Uint64(uint64(heartbeat.StateAlive))
			rep.Uint64(1)
			rep.Uint64(1000)
		}
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	out, code := rfcctl(t, "members", fake.Addr().String())
	n := len(strings.Split(strings.TrimRight(out, "\n"), "\n"))
	if bad := strings.ContainsAny(out, "\x1b\x07"); code != 0 || n != 3 || bad {
		t.Fatalf("rfcctl members: exit %d, %d lines (want 3), control bytes %v:\n%q", code, n, bad, out)
	}
}

// TestAuditRecordPastMaxDatagram: a router answers an audit page EMSGSIZE
// when its next record does not fit the reply; rfcctl audit says that
// -max-datagram bounds the reply (exit 1), not the error number alone.
func TestAuditRecordPastMaxDatagram(t *testing.T) {
	fake := fakeRouter(t, func(*rfc.Request, *wire.Params) wire.Errno { return wire.EMSGSIZE })
	out, code := rfcctl(t, "audit", "-max-datagram", "512", fake, "-call", "ns-put")
	if code != 1 || !strings.HasPrefix(out, "EMSGSIZE") || !strings.Contains(out, "-max-datagram 512") {
		t.Fatalf("rfcctl audit answered EMSGSIZE: exit %d, output %q", code, out)
	}
}

// TestAuditPagesOwnDeadline: a router reads a long trail page by page at
// its QueryScanRate (a full default trail takes some 16 s), each page
// answered at once or after a pause; rfcctl audit gives each page its own
// -t, as calls and stats do, so that a query longer than -t still ends.
// Its one deadline for the whole query made every query of a trail past
// about -t times the rate end ETIMEDOUT, printing nothing. The stand-in
// answers each page after a pause, with a cursor that advances, until
// auditPages pages were read.
func TestAuditPagesOwnDeadline(t *testing.T) {
	const auditPages = 30
	const pause = 50 * time.Millisecond // auditPages of it are past -t
	fake := fakeRouter(t, func(req *rfc.Request, rep *wire.Params) wire.Errno {
		time.Sleep(pause)
		if off := req.Param(6).Uint64(); off < auditPages {
			rep.Uint64(1)
			rep.Uint64(off + 1)
		} else {
			rep.Uint64(0)
			rep.Uint64(0)
		}
		return wire.OK
	})
	out, code := rfcctl(t, "audit", "-t", "1s", fake, "-call", "ns-put")
	if code != 0 || !strings.HasPrefix(out, "start") {
		t.Fatalf("rfcctl audit of %d pages of %v each with -t 1s: exit %d, output %q", auditPages, pause, code, out)
	}
}

// fakeRouter starts a stand-in for a router whose audit call answers by
// answer, and returns its address.
func fakeRouter(t *testing.T, answer func(req *rfc.Request, rep *wire.Params) wire.Errno) string {
	t.Helper()
	fake := rfctest.Listen(t, 9, nil)
	schema := wire.Schema{wire.TypeString, wire.TypeUint64, wire.TypeUint64, wire.TypeString, wire.TypeUint64,
		wire.TypeUint64, wire.TypeUint64, wire.TypeBytes}
	if err := fake.Register(route.CallAudit, "route-audit", schema, rfc.Idempotent, func(req *rfc.Request, rep *wire.Params) wire.Errno {
		return answer(req, rep)
	}); err != nil {
		t.Fatal(err)
	}
	return fake.Addr().String()
}

// TestShmHolderSlotsFull: rfcctl shm opening a map whose lock has every
// holder slot taken by a live process names that bound (lock.Slots)
// instead of a bare ENOSPC that reads as a full disk.
func TestShmHolderSlotsFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.shm")
	m, err := shm.Create(path, 1<<20, shm.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	opts := shm.DefaultOptions()
	opts.ReadOnly = true
	for {
		r, err := shm.Open(path, opts)
		if err == wire.ENOSPC {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
	}
	out, code := rfcctl(t, "shm", "stat", path)
	if code != 1 || !strings.Contains(out, "ENOSPC") || !strings.Contains(out, "lock.Slots") {
		t.Fatalf("rfcctl shm stat of a map with every holder slot held: exit %d, output:\n%s", code, out)
	}
}

// TestDispatchMarkerFull: rfcctl dispatch submit, refused ENOSPC because
// the resource's conflict marker already holds the dispatcher's
// MaxHolders operations, names that bound instead of a bare ENOSPC.
func TestDispatchMarkerFull(t *testing.T) {
	center, _ := startCenter(t)
	// The target holds every call until the test ends, and with it every
	// operation and its place in the marker.
	target := rfctest.Listen(t, 11, nil)
	hold := make(chan struct{})
	if err := target.Register(0x1000, "hold", nil, 0, func(*rfc.Request, *wire.Params) wire.Errno { <-hold; return wire.OK }); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "disp.json")
	os.WriteFile(cfg, []byte(`{"insecure": true, "roles": ["dispatcher"], "registry": {"centers": ["`+center+`"]},
		"dispatcher": {"targets": ["`+target.Addr().String()+`"]}}`), 0o600)
	disp := startNode(t, "-config", cfg)
	t.Cleanup(func() { close(hold) })
	// Reads share a marker.
	submit := []string{"submit", disp, "-t", "10s", "-resource", "r", "-kind", "read", "-targets", target.Addr().String(),
		"-call", "0x1000", "-deadline", "9s", "-wait=false"}
	for i := 0; i < dispatch.DefaultMaxHolders; i++ {
		var out, errOut bytes.Buffer
		if code := cmdDispatch(submit, &out, &errOut); code != 0 {
			t.Fatalf("dispatch submit %d: exit %d, output:\n%s%s", i, code, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	code := cmdDispatch(submit, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "ENOSPC") || !strings.Contains(out.String(), "MaxHolders") {
		t.Fatalf("dispatch submit past MaxHolders: exit %d, output:\n%s%s", code, out.String(), errOut.String())
	}
}

// TestBenchManyCallers: rfcctl bench with more callers than its
// endpoint's default bound on calls in flight (64) makes every caller's
// calls. Before, the callers past the 64th found no free slot and failed
// at once with EBUSY, over and over: a bench -c 100 reported a million
// EBUSY, a limit of rfcctl's own that read as a busy node.
func TestBenchManyCallers(t *testing.T) {
	addr := startNode(t, "-node", "5", "-insecure")
	out, code := rfcctl(t, "bench", "-json", "-c", "100", "-d", "300ms", "-t", "10s", addr)
	var sum benchSummary
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil || sum.Errors["EBUSY"] != 0 {
		t.Fatalf("rfcctl bench -c 100: exit %d, errors %v, output:\n%s", code, sum.Errors, out)
	}
}
