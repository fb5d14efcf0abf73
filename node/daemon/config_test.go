package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

func TestExampleConfig(t *testing.T) {
	c := Default()
	if err := LoadFile("../../docs/rfcd.example.json", &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("docs/rfcd.example.json: %v", err)
	}
	if c.Node != 2 || len(c.Roles) != 2 || c.Heartbeat.Interval.Milliseconds() != 200 || len(c.Registry.Services) != 1 {
		t.Fatalf("example read as %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ json, field string }{
		{`{"insecure": true, "addr": "x"}`, "addr"},
		{`{}`, "key_file"},
		{`{"insecure": true, "key_file": "k"}`, "insecure"},
		{`{"insecure": true, "log_level": "loud"}`, "log_level"},
		{`{"insecure": true, "roles": ["chef"]}`, "roles"},
		{`{"insecure": true, "roles": ["worker", "worker"], "heartbeat": {"members": ["127.0.0.1:1"]}}`, "roles"},
		{`{"insecure": true, "roles": ["master"]}`, "heartbeat.members"},
		{`{"insecure": true, "heartbeat": {"members": ["nope"]}}`, "heartbeat.members[0]"},
		{`{"insecure": true, "heartbeat": {"interval": "soon"}}`, "heartbeat.interval"},
		{`{"insecure": true, "roles": ["center"]}`, "center.data_dir"},
		{`{"insecure": true, "roles": ["center"], "center": {"data_dir": "d", "fsync": "sometimes"}}`, "center.fsync"},
		{`{"insecure": true, "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}}`, "center.peer"},
		{`{"insecure": true, "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}, "heartbeat": {"members": ["127.0.0.1:7002"]}}`, "center.peer"},
		{`{"insecure": true, "addr": "127.0.0.1:7001", "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}, "heartbeat": {"members": ["127.0.0.1:7001"]}}`, "center.peer"},
		{`{"insecure": true, "roles": ["agent"], "registry": {"shm_file": "f"}}`, "registry.centers"},
		{`{"insecure": true, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"]}}`, "registry.shm_file"},
		{`{"insecure": true, "engine": {"workers": "many"}}`, "engine.workers"},
		{`{"insecure": true, "colour": "blue"}`, "colour"},
		{`{"insecure": true, "roles": ["dispatcher"], "dispatcher": {"targets": ["x"]}}`, "dispatcher.targets[0]"},
		{`{"insecure": true, "roles": ["center", "dispatcher"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}, "heartbeat": {"members": ["127.0.0.1:7001"]}, "dispatcher": {"targets": ["127.0.0.1:7002", "[::ffff:127.0.0.1]:7001"]}}`, "dispatcher.targets[1]"},
		// A key given twice (in any case: field names match without
		// regard to case) is refused, not decided by its last copy.
		{`{"insecure": true, "key_file": "k", "key_file": ""}`, "key_file"},
		{`{"insecure": true, "engine": {"workers": 2, "Workers": 64}}`, "engine.Workers"},
		{`{"insecure": true, "registry": {"services": [{"name": "a"}, {"name": "b", "meta": "x", "meta": "y"}]}}`, "registry.services[1].meta"},
		// A second object after the first is refused, not ignored.
		{`{"insecure": true} {"colour": "blue"}`, "(file)"},
		{`{"insecure": true}]`, "(file)"},
		// A service instance is keyed by its node id, which the centers
		// refuse to be 0, and by a name without the instance separator:
		// rfcd started, then exited 1 with "registry.services "db":
		// EINVAL" once a center answered.
		{`{"insecure": true, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "services": [{"name": "db"}]}}`, "node"},
		{`{"insecure": true, "node": 3, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "services": [{"name": "db"}, {"name": "db#2"}]}}`, "registry.services[1].name"},
		// A member listed twice, in any form, is refused: the heartbeat
		// kept one entry per form, probing and reporting the node twice.
		{`{"insecure": true, "heartbeat": {"members": ["127.0.0.1:7001", "127.0.0.1:7002", "[::ffff:127.0.0.1]:7001"]}}`, "heartbeat.members[2]"},
		// Past the centers' bound on prefixes per node every subscription
		// of the agent's watch was refused (ENOSPC): rfcd ran with an
		// empty map and said nothing.
		{`{"insecure": true, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "prefixes": ["p0/", "p1/", "p2/", "p3/", "p4/", "p5/", "p6/", "p7/", "p8/", "p9/", "p10/", "p11/", "p12/", "p13/", "p14/", "p15/", "p16/", "p17/", "p18/", "p19/", "p20/", "p21/", "p22/", "p23/", "p24/", "p25/", "p26/", "p27/", "p28/", "p29/", "p30/", "p31/", "kv/"]}}`, "registry.prefixes"},
		// A lease the centers refuse (past their 10 min bound) stopped the
		// start with only "registry.services "db": EINVAL"; one of 1 ms
		// expired between renewals: the instance flapped in and out of
		// the registry while the agent renewed and registered again.
		{`{"insecure": true, "node": 3, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "lease": "11m", "services": [{"name": "db"}]}}`, "registry.lease"},
		{`{"insecure": true, "node": 3, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "lease": "1ms", "services": [{"name": "db"}]}}`, "registry.lease"},
		// The router serves the namespace call numbers the member serves.
		{`{"insecure": true, "roles": ["router", "member"], "registry": {"centers": ["127.0.0.1:1"]}}`, "roles"},
		// A service named twice: the node holds one instance per name,
		// so the second registration replaced the first and the first
		// address was never registered, without a word.
		{`{"insecure": true, "node": 3, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "services": [{"name": "db", "addr": "10.0.0.1:1"}, {"name": "x"}, {"name": "db", "addr": "10.0.0.2:2"}]}}`, "registry.services[2].name"},
		// A center listed twice, in any form, is refused: the registry
		// client took it for two centers, failing over from the center
		// to itself, and the node ran on one center as if it had two.
		{`{"insecure": true, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1", "127.0.0.1:1"], "shm_file": "f"}}`, "registry.centers[1]"},
		{`{"insecure": true, "roles": ["router"], "registry": {"centers": ["127.0.0.1:1", "[::ffff:127.0.0.1]:1"]}}`, "registry.centers[1]"},
	}
	for _, tc := range cases {
		c := Default()
		err := Load(strings.NewReader(tc.json), &c)
		if err == nil {
			err = c.Validate()
		}
		if rfctest.ConfigError(t, err, "rfcd", tc.field) == nil {
			t.Errorf("for %s", tc.json)
		}
	}
}

// TestPackageRangeErrors: a value the file passes on is checked by the
// package that takes it (Validate lets it through), and Start refuses it
// with an rfcd configuration error naming the file's field.
func TestPackageRangeErrors(t *testing.T) {
	log := rfctest.Quiet
	dir := t.TempDir()
	cases := []struct{ json, field, why string }{
		{`{"engine": {"max_datagram": 70000}}`, "engine.max_datagram", "between 124 and 65507"},
		// The refusal names the bounds the engine applies: one header
		// and 64 bytes of parameters at least.
		{`{"engine": {"max_datagram": 123}}`, "engine.max_datagram", "123: must be between 124 and 65507"},
		{`{"engine": {"workers": -1}}`, "engine.workers", "between 1 and 4096"},
		{`{"engine": {"max_age": "-1s"}}`, "engine.max_age", "between 0 and"},
		{`{"heartbeat": {"members": ["127.0.0.1:9"], "interval": "500us"}}`, "heartbeat.interval", "500µs: must be at least 1ms"},
		{`{"heartbeat": {"members": ["127.0.0.1:9"], "interval": "-1s"}}`, "heartbeat.interval", "-1s: must be at least 1ms"},
		// An interval whose derived timers would overflow is refused as
		// given (it was reported as a negative RoundTimeout), and so is
		// one past a day that would never probe.
		{`{"heartbeat": {"members": ["127.0.0.1:9"], "interval": "1000000h"}}`, "heartbeat.interval", "1000000h0m0s: must be at most 24h0m0s"},
		{`{"heartbeat": {"members": ["127.0.0.1:9"], "interval": "25h"}}`, "heartbeat.interval", "25h0m0s: must be at most 24h0m0s"},
		{`{"roles": ["center"], "center": {"data_dir": "` + dir + `", "index": 2}}`, "center.index", "0 or 1"},
		// An index outside the registry's byte is refused as the file
		// gives it: -1 was taken as center 0 and started a center
		// without a word, 256 was reported as 255.
		{`{"roles": ["center"], "center": {"data_dir": "` + dir + `", "index": -1}}`, "center.index", "-1: must be 0 or 1"},
		{`{"roles": ["center"], "center": {"data_dir": "` + dir + `", "index": 256}}`, "center.index", "256: must be 0 or 1"},
		{`{"roles": ["dispatcher"], "dispatcher": {"targets": []}}`, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			c := Default()
			if err := Load(strings.NewReader(tc.json), &c); err != nil {
				t.Fatal(err)
			}
			c.Insecure = true
			c.Addr = "127.0.0.1:0"
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v (a package's range, not the file's)", err)
			}
			n, err := Start(c, log)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				n.Stop()
				return
			}
			if err == nil {
				n.Stop()
				t.Fatalf("Start accepted %s", tc.json)
			}
			if rfctest.ConfigError(t, err, "rfcd", tc.field) != nil && !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %v, want the reason %s", err, tc.why)
			}
		})
	}
}

// A center whose peer the heartbeat watches is accepted.
func TestCenterPeerWatched(t *testing.T) {
	c := Default()
	body := `{"insecure": true, "addr": "127.0.0.1:7000", "roles": ["center"], "center": {"data_dir": "d", "peer": "127.0.0.1:7001"}, "heartbeat": {"members": ["127.0.0.1:7001"]}}`
	if err := Load(strings.NewReader(body), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("watched peer refused: %v", err)
	}
}

// TestDispatchTargetsNotPeer: a center node's dispatcher may not send a
// remote submit to the peer center (the peer answers the calls between
// centers from this node's address): the default remote targets, the
// heartbeat members, leave it out, in any form. TestNoRelayToPeerCenter
// shows the relay end to end.
func TestDispatchTargetsNotPeer(t *testing.T) {
	c := Default()
	body := `{"insecure": true, "addr": "127.0.0.1:7000", "roles": ["center", "dispatcher"], "center": {"data_dir": "d", "peer": "[::ffff:127.0.0.1]:7001"}, "heartbeat": {"members": ["127.0.0.1:7001", "127.0.0.1:7002"]}}`
	if err := Load(strings.NewReader(body), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.DispatchTargets()
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.1:7002") {
		t.Fatalf("remote targets %v, want only 127.0.0.1:7002", got)
	}
	c.Roles = []string{"dispatcher"}
	if got := c.DispatchTargets(); len(got) != 2 {
		t.Fatalf("a node that is no center: remote targets %v, want both members", got)
	}
}

// TestRouterWithoutRegistry: a router whose registry centers do not
// answer cannot load its mount table; Start's error says so and names
// registry.centers, not only the registry's error number.
func TestRouterWithoutRegistry(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := Default()
	c.Insecure = true
	c.Addr = "127.0.0.1:0"
	c.Roles = []string{RoleRouter}
	c.Registry.Centers = rfctest.FreeAddrs(t, 1)
	c.Router.AuditDir = t.TempDir()
	n, err := Start(c, log)
	if err == nil {
		n.Stop()
		t.Fatal("a router started without a registry")
	}
	if !strings.Contains(err.Error(), "registry.centers") || !errors.Is(err, wire.ETIMEDOUT) {
		t.Fatalf("got %q, want an error naming registry.centers that wraps the registry's ETIMEDOUT", err)
	}
}

// TestLoadFileNotRegular: a configuration path that is not a regular file
// is refused at once, naming the path. rfcd -config /dev/zero read until
// memory ran out (933 MB resident after 3 s) and -config FIFO waited
// forever for a writer.
func TestLoadFileNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dev/zero", fifo, t.TempDir()} {
		done := make(chan error, 1)
		go func() {
			c := Default()
			done <- LoadFile(path, &c)
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("LoadFile(%s): %v, want an error saying it is not a regular file", path, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("LoadFile(%s) still reading after 20 s", path)
		}
	}
}

// TestLoadFileTooLarge: a configuration path naming a large file (here
// 64 MiB, sparse) is refused without reading it whole; rfcd read any
// regular file into memory before decoding it.
func TestLoadFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 64<<20); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := LoadFile(path, &c); err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Fatalf("LoadFile of 64 MiB: %v, want an error naming the bound", err)
	}
}

// TestServiceSizeErrors: a registration whose address or metadata the
// centers would refuse as too large is refused by Validate, naming the
// field and its bound. rfcd started, then exited 1 with only
// "registry.services "db": EMSGSIZE" once a center answered.
func TestServiceSizeErrors(t *testing.T) {
	svc := func(s string) string {
		return `{"insecure": true, "node": 3, "roles": ["agent"], "registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "services": [{"name": "db"}, ` + s + `]}}`
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	room := registry.MaxServiceMeta(wire.DefaultMaxDatagram, "db2", 3, len("127.0.0.1:7000"))
	cases := []struct{ json, field, why string }{
		{svc(`{"name": "db2", "addr": "` + long(256) + `"}`), "registry.services[1].addr", "longer than 255 bytes"},
		{svc(`{"name": "db2", "meta": "` + long(1400) + `"}`), "registry.services[1].meta", "longer than "},
		{svc(`{"name": "db2", "addr": "` + long(255) + `"}`), "", ""},
		{svc(`{"name": "db2", "addr": "127.0.0.1:7000", "meta": "` + long(room) + `"}`), "", ""},
		{svc(`{"name": "db2", "addr": "127.0.0.1:7000", "meta": "` + long(room+1) + `"}`), "registry.services[1].meta", fmt.Sprintf("longer than %d bytes", room)},
	}
	for _, tc := range cases {
		c := Default()
		err := Load(strings.NewReader(tc.json), &c)
		if err == nil {
			err = c.Validate()
		}
		if tc.field == "" {
			if err != nil {
				t.Errorf("refused: %v", err)
			}
			continue
		}
		if ce := rfctest.ConfigError(t, err, "rfcd", tc.field); ce != nil && !strings.Contains(ce.Why, tc.why) {
			t.Errorf("got %q, want the bound %q", ce.Why, tc.why)
		}
	}
}
