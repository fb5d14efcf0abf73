package center

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// stepClock is a Clock whose wall and monotonic readings the test moves
// apart: wall starts at the host's wall clock, mono at 1 s.
type stepClock struct{ wall, mono atomic.Int64 }

func newStepClock() *stepClock {
	c := &stepClock{}
	c.wall.Store(time.Now().UnixMilli())
	c.mono.Store(int64(time.Second))
	return c
}

func (c *stepClock) WallMs() int64            { return c.wall.Load() }
func (c *stepClock) MonoNs() int64            { return c.mono.Load() }
func (c *stepClock) stepWall(d time.Duration) { c.wall.Add(d.Milliseconds()) }
func (c *stepClock) stepMono(d time.Duration) { c.mono.Add(int64(d)) }

// entryKind is the kind of the center's record of key, -1 if unknown.
func entryKind(c *Center, key string) int {
	rec, ok := c.Entry(key)
	if !ok {
		return -1
	}
	return int(sdk.RecordKind(rec))
}

// TestLeaseIgnoresWallClockSteps: lease deadlines follow the monotonic
// clock. A forward step of the wall clock far past a lease expires
// nothing; a backward step does not keep an instance alive once its lease
// has run out on the monotonic clock.
func TestLeaseIgnoresWallClockSteps(t *testing.T) {
	cases := []struct {
		name       string
		wall, mono time.Duration // steps after the registration (lease 1s)
		want       uint8
	}{
		{"wall-forward", time.Hour, 0, sdk.KindService},
		{"wall-back-lease-over", -time.Hour, 2 * time.Second, sdk.KindTombstone},
		{"lease-running", 0, 500 * time.Millisecond, sdk.KindService},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newStepClock()
			cfg := testCenterConfig(t.TempDir(), 0, netip.AddrPort{})
			cfg.Clock = clk
			c := startLone(t, cfg)
			cl := newClient(t, regtest.Endpoint(t, 7, ""), c.Endpoint().Addr())
			if _, err := cl.Register(rfctest.Context(t, 10*time.Second), "db", "10.0.0.1:5432", nil, time.Second); err != nil {
				t.Fatal(err)
			}
			key := sdk.ServiceKey("db", 7)
			clk.stepWall(tc.wall)
			clk.stepMono(tc.mono)
			c.sweep()
			if tc.want == sdk.KindTombstone {
				// A sweep of the maintenance loop may hold the write.
				rfctest.WaitFor(2*time.Second, func() bool { return entryKind(c, key) == int(sdk.KindTombstone) })
			}
			if k := entryKind(c, key); k != int(tc.want) {
				t.Fatalf("wall %v, monotonic %v after a 1s lease: kind %d, want %d", tc.wall, tc.mono, k, tc.want)
			}
		})
	}
}

// TestPurgedTombstoneStaysPurged: a tombstone ages from its deletion time,
// which it carries in its record, so a restart does not make it younger
// and a center does not take back from the other a tombstone it has
// purged. Before, a restarted center's tombstones got fresh ages, the two
// purge times differed, and each center took back the tombstone the other
// had just purged, with a fresh age, for good.
func TestPurgedTombstoneStaysPurged(t *testing.T) {
	clk := newStepClock()
	mod := func(i int, c *Config) {
		c.Clock = clk
		c.SweepEvery = time.Hour // the test sweeps
		c.AntiEntropyEvery = time.Hour
	}
	p := startPair(t, mod)
	cl := newClient(t, regtest.Endpoint(t, 7, ""), p.Addrs()...)
	ctx := rfctest.Context(t, 10*time.Second)
	if _, err := cl.Put(ctx, "a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	const key = "kv/a"
	for i, c := range p.Cs {
		if k := entryKind(c, key); k != int(sdk.KindTombstone) {
			t.Fatalf("center %d: kind %d, want a tombstone", i, k)
		}
	}

	// Center 1 restarts 40 minutes after the deletion.
	addr := p.EPs[1].Addr()
	p.Cs[1].Close()
	p.EPs[1].Close()
	clk.stepWall(40 * time.Minute)
	cfg := testCenterConfig(p.Dirs[1], 1, p.EPs[0].Addr())
	mod(1, &cfg)
	p.EPs[1] = regtest.Endpoint(t, 101, addr.String())
	p.Cs[1] = startCenterOn(t, p.EPs[1], cfg)

	// An hour and a minute after the deletion, center 0 purges it, then
	// compares with center 1, which has not swept yet.
	clk.stepWall(21 * time.Minute)
	p.Cs[0].sweep()
	if k := entryKind(p.Cs[0], key); k != -1 {
		t.Fatalf("center 0 after its sweep: kind %d, want purged", k)
	}
	if !p.Cs[0].antiEntropy() {
		t.Fatal("anti-entropy round at center 0 failed")
	}
	if k := entryKind(p.Cs[0], key); k != -1 {
		t.Fatalf("center 0 took back the tombstone it purged (kind %d)", k)
	}
	p.Cs[1].sweep()
	for round := 0; round < 2; round++ {
		for i, c := range p.Cs {
			if !c.antiEntropy() {
				t.Fatalf("anti-entropy round at center %d failed", i)
			}
		}
	}
	for i, c := range p.Cs {
		if k, n := entryKind(c, key), c.Stats().Keys; k != -1 || n != 0 {
			t.Fatalf("center %d: kind %d, %d keys; want purged, none", i, k, n)
		}
	}
}

// TestAgedTombstoneDeletesOlderRecord: a tombstone that arrives past its
// age still deletes the older record a center holds (a deletion is not
// lost because it came late), and a restart replaying the log does not
// bring the record back.
func TestAgedTombstoneDeletesOlderRecord(t *testing.T) {
	clk := newStepClock()
	dir := t.TempDir()
	cfg := testCenterConfig(dir, 0, netip.AddrPort{})
	cfg.Clock = clk
	cfg.SweepEvery = time.Hour // the test sweeps
	c := startLone(t, cfg)
	addr := c.Endpoint().Addr()
	cl := newClient(t, regtest.Endpoint(t, 7, ""), addr)
	ctx := rfctest.Context(t, 10*time.Second)
	v, err := cl.Put(ctx, "b", []byte("1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	tomb := sdk.Record{Kind: sdk.KindTombstone, Version: v + 4, ModifiedMs: clk.WallMs() - 2*cfg.TombstoneAge.Milliseconds()}
	c.mu.Lock()
	_, applied, aerr := c.applyLocked("kv/b", sdk.AppendRecord(nil, &tomb), clk.WallMs())
	c.mu.Unlock()
	if !applied || aerr != nil {
		t.Fatalf("aged tombstone over an older record: applied %v, %v", applied, aerr)
	}
	if _, err := cl.Get(ctx, "b"); wire.AsErrno(err) != wire.ENOENT {
		t.Fatalf("get after the aged tombstone: %v, want ENOENT", err)
	}
	c2 := restartCenter(t, c, cfg)
	if _, err := cl.Get(ctx, "b"); wire.AsErrno(err) != wire.ENOENT {
		t.Fatalf("get after the restart: %v, want ENOENT", err)
	}
	c2.sweep()
	if k, n := entryKind(c2, "kv/b"), c2.Stats().Keys; k != -1 || n != 0 {
		t.Fatalf("after the sweep: kind %d, %d keys; want purged, none", k, n)
	}
}

// TestAntiEntropyRefusesStuckListing: anti-entropy pages through the
// other center's store following each page's next key; a page whose next
// key does not move on is refused (counted as malformed) and the round
// fails (SyncFailed), instead of listing the same page without end.
// Before, the round paged through the fake center's stuck pages until the
// fake gave up, and then counted as completed.
func TestAntiEntropyRefusesStuckListing(t *testing.T) {
	const stuckPages = 2000
	peer := regtest.Endpoint(t, 101, "")
	pages := regtest.StuckList(t, peer, stuckPages)
	cfg := testCenterConfig(t.TempDir(), 0, peer.Addr())
	cfg.AntiEntropyEvery = time.Hour // the round at start only
	c := startLone(t, cfg)
	if !rfctest.WaitFor(30*time.Second, func() bool { st := c.Stats(); return st.SyncFailed > 0 || st.SyncRounds > 0 }) {
		t.Fatalf("anti-entropy round neither failed nor ended: %d pages listed", pages.Load())
	}
	if st := c.Stats(); st.SyncRounds != 0 || st.SyncFailed == 0 || st.Malformed == 0 {
		t.Fatalf("after %d pages: %d rounds ended, %d failed, %d malformed; want the round refused as malformed",
			pages.Load(), st.SyncRounds, st.SyncFailed, st.Malformed)
	}
}
