package center

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry/agent"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
)

// mapAddr returns the address of service name's instance in the map, ""
// if there is none.
func mapAddr(r *sdk.Reader, name string) string {
	in, err := r.LookupDirect(name, nil)
	if err != nil || len(in) != 1 {
		return ""
	}
	return in[0].Addr
}

// TestCrashBeforeSyncWithdrawn: a center pushes a write to its
// subscribers while the write's fsync runs. If the machine fails before
// that fsync completes, the write was never acknowledged and is gone from
// the center's disk; once the center is back, no subscriber may keep it:
// a new registration leaves the maps, a replaced one reverts to what the
// center holds, and the version number the lost write carried, which the
// restarted center makes again for another record, is taken.
func TestCrashBeforeSyncWithdrawn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "center")
	cfg := testCenterConfig(dir, 0, netip.AddrPort{})
	c := startLone(t, cfg)
	addr := c.Endpoint().Addr()
	path := filepath.Join(t.TempDir(), "crash.map")
	a := startAgent(t, regtest.Endpoint(t, 50, ""), path, []netip.AddrPort{addr}, func(c *agent.AgentConfig) {
		c.AttemptTimeout = 100 * time.Millisecond
		c.KeepaliveEvery = 50 * time.Millisecond
	})
	r := regtest.OpenMap(t, path)
	cl := newClient(t, regtest.Endpoint(t, 7, ""), addr)
	ctx := rfctest.Context(t, 20*time.Second)
	if _, err := cl.Register(ctx, "keep", "127.0.0.1:1", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(5*time.Second, func() bool { return mapAddr(r, "keep") == "127.0.0.1:1" }) {
		t.Fatal("registration not in the map")
	}

	// The disk stops answering: every fsync from now on waits, then
	// fails. What is on disk is what was synced so far.
	release := newGate(t)
	setSyncFile(c.wal, func(File) error {
		release.wait()
		return syscall.EIO
	})
	c.wal.wait.Lock()
	durable := c.wal.wait.synced
	c.wal.wait.Unlock()

	// Two writes reach the map before their fsync: one replaces "keep",
	// one registers "new". Neither is acknowledged.
	lost := make(chan error, 2)
	for _, w := range [...]struct{ name, addr string }{{"keep", "127.0.0.1:2"}, {"new", "127.0.0.1:3"}} {
		go func() {
			wctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := cl.Register(wctx, w.name, w.addr, nil, time.Minute)
			lost <- err
		}()
	}
	if !rfctest.WaitFor(5*time.Second, func() bool {
		return mapAddr(r, "keep") == "127.0.0.1:2" && mapAddr(r, "new") == "127.0.0.1:3"
	}) {
		t.Fatal("unsynced writes not pushed")
	}

	// The machine fails: the fsyncs fail (so nothing is acknowledged),
	// the center stops, and its log loses what was not synced.
	release.open()
	c.Endpoint().Close()
	for i := 0; i < 2; i++ {
		if err := <-lost; err == nil {
			t.Fatal("a write whose fsync failed was acknowledged")
		}
	}
	c.Close()
	if err := os.Truncate(filepath.Join(dir, LogName), durable); err != nil {
		t.Fatal(err)
	}

	c2 := startCenterOn(t, regtest.Endpoint(t, 100, addr.String()), cfg)
	if !rfctest.WaitFor(5*time.Second, func() bool {
		return mapAddr(r, "keep") == "127.0.0.1:1" && mapAddr(r, "new") == ""
	}) {
		t.Fatalf("after the restart the map holds keep=%q new=%q, want the center's keep=127.0.0.1:1 and no new (watch %+v, center %+v)",
			mapAddr(r, "keep"), mapAddr(r, "new"), a.Watch().Stats(), c2.Stats())
	}
	// The restarted center makes the lost write's version again.
	v, err := cl.Register(ctx, "keep", "127.0.0.1:4", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(5*time.Second, func() bool { return mapAddr(r, "keep") == "127.0.0.1:4" }) {
		t.Fatalf("version %d after the restart not applied: the map holds keep=%q", v, mapAddr(r, "keep"))
	}
}
