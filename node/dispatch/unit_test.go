package dispatch

import (
	"context"
	"math"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/node/registry"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

func TestConflictTable(t *testing.T) {
	cases := []struct {
		held, wanted Kind
		conflict     bool
	}{
		{KindRead, KindRead, false},
		{KindRead, KindUpdate, false},
		{KindRead, KindDelete, true},
		{KindUpdate, KindRead, false},
		{KindUpdate, KindUpdate, true},
		{KindUpdate, KindDelete, true},
		{KindDelete, KindRead, true},
		{KindDelete, KindUpdate, true},
		{KindDelete, KindDelete, true},
		{KindInvalid, KindRead, true},
		{KindRead, Kind(9), true},
	}
	for _, c := range cases {
		t.Run(c.held.String()+"/"+c.wanted.String(), func(t *testing.T) {
			if got := Conflicts(c.held, c.wanted); got != c.conflict {
				t.Fatalf("Conflicts(%v, %v) = %v", c.held, c.wanted, got)
			}
			if Conflicts(c.wanted, c.held) != Conflicts(c.held, c.wanted) {
				t.Fatal("table not symmetric")
			}
		})
	}
	for k := KindRead; k < kindLimit; k++ {
		if g, ok := KindByName(k.String()); !ok || g != k {
			t.Fatalf("KindByName(%q)", k.String())
		}
	}
	if _, ok := KindByName("invalid"); ok {
		t.Fatal("invalid is a kind name")
	}
}

func TestMarkerCodec(t *testing.T) {
	hs := []holder{{KindRead, 1, 2, 3}, {KindDelete, ^uint64(0), 7, 1 << 50}}
	b := appendMarker(nil, hs)
	if len(b) != markerHdrSize+2*holderSize {
		t.Fatalf("len %d", len(b))
	}
	got, e := decodeMarker(b, nil)
	if e != wire.OK || len(got) != 2 || got[0] != hs[0] || got[1] != hs[1] {
		t.Fatalf("round trip: %v %v", got, e)
	}
	bad := map[string][]byte{
		"empty":     nil,
		"version":   {2, 0},
		"short":     b[:len(b)-1],
		"long":      append(append([]byte(nil), b...), 0),
		"kind-zero": func() []byte { c := append([]byte(nil), b...); c[markerHdrSize] = 0; return c }(),
		"kind-high": func() []byte { c := append([]byte(nil), b...); c[markerHdrSize] = 9; return c }(),
	}
	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			if _, e := decodeMarker(v, nil); e != wire.EPROTO {
				t.Fatalf("got %v", e)
			}
		})
	}
}

// TestSubmitChecksSegment: Submit refuses, before anything is sent, a call
// whose segment is malformed or whose count disagrees with its segment
// (the segment is checked by wire.CheckSegment, as a receiver would).
func TestSubmitChecksSegment(t *testing.T) {
	d := newDispatcher(t, newEP(t, 1, nil), NewMemStore(0), nil)
	to := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	good := workCall(1)
	cases := []struct {
		name string
		call Call
		want wire.Errno
	}{
		{"good", good, wire.OK},
		{"count", Call{No: good.No, Seg: good.Seg, Count: 2}, wire.EINVAL},
		{"bool-2", Call{No: good.No, Seg: []byte{byte(wire.TypeBool), 0, 1, 2}, Count: 1}, wire.EINVAL},
		{"truncated", Call{No: good.No, Seg: good.Seg[:len(good.Seg)-1], Count: 1}, wire.EINVAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, e := d.check(opFor("db/seg", KindUpdate, c.call, to, time.Second))
			if e != c.want {
				t.Fatalf("check: %v, want %v", e, c.want)
			}
		})
	}
}

func TestMemStore(t *testing.T) {
	s := NewMemStore(2)
	ctx := context.Background()
	var v1, v2 uint64
	type step struct {
		name string
		run  func() error
		want wire.Errno
	}
	steps := []step{
		{"get-absent", func() error { _, _, err := s.Get(ctx, "a"); return err }, wire.ENOENT},
		{"create", func() (err error) { v1, err = s.CAS(ctx, "a", 0, []byte("x"), 0); return }, wire.OK},
		{"create-again", func() error { _, err := s.CAS(ctx, "a", 0, []byte("y"), 0); return err }, wire.ECONFLICT},
		{"wrong-version", func() error { _, err := s.CAS(ctx, "a", v1+100, []byte("y"), 0); return err }, wire.ECONFLICT},
		{"cas-absent", func() error { _, err := s.CAS(ctx, "zz", 5, []byte("y"), 0); return err }, wire.ECONFLICT},
		{"update", func() (err error) { v2, err = s.CAS(ctx, "a", v1, []byte("y"), 0); return }, wire.OK},
		{"get", func() error {
			v, ver, err := s.Get(ctx, "a")
			if err == nil && (string(v) != "y" || ver != v2) {
				return wire.EPROTO
			}
			return err
		}, wire.OK},
		{"delete-wrong", func() error { return s.Delete(ctx, "a", v1) }, wire.ECONFLICT},
		{"delete", func() error { return s.Delete(ctx, "a", v2) }, wire.OK},
		{"delete-absent", func() error { return s.Delete(ctx, "a", 0) }, wire.ENOENT},
		{"bad-ttl", func() error { _, err := s.CAS(ctx, "d", 0, nil, -1); return err }, wire.EINVAL},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got := errnoOf(st.run()); got != st.want {
				t.Fatalf("got %v, want %v", got, st.want)
			}
		})
	}
}

// TestMemStoreTTL: an entry with a TTL is live until the TTL has passed
// on the store's clock (time.Now) and gone from that instant; once
// expired it makes room in a full store without being read first. In a
// synctest bubble: the TTL passes in virtual time, and the bound is
// exact.
func TestMemStoreTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemStore(2)
		ctx := context.Background()
		check := func(step string, err error, want wire.Errno) {
			t.Helper()
			if got := errnoOf(err); got != want {
				t.Fatalf("%s: got %v, want %v", step, got, want)
			}
		}
		_, err := s.CAS(ctx, "a", 0, []byte("x"), 0)
		check("create", err, wire.OK)
		ver, err := s.CAS(ctx, "t", 0, []byte("t"), time.Hour)
		check("ttl-create", err, wire.OK)
		_, err = s.CAS(ctx, "c", 0, []byte("c"), 0)
		check("full", err, wire.ENOSPC)
		_, _, err = s.Get(ctx, "t")
		check("ttl-live", err, wire.OK)
		const ttl = time.Millisecond
		_, err = s.CAS(ctx, "t", ver, []byte("t"), ttl)
		check("ttl-replace-short", err, wire.OK)
		time.Sleep(ttl - time.Nanosecond)
		_, _, err = s.Get(ctx, "t")
		check("live until the TTL", err, wire.OK)
		time.Sleep(time.Nanosecond)
		_, err = s.CAS(ctx, "c", 0, []byte("c"), 0)
		check("room-after-expiry", err, wire.OK)
		_, _, err = s.Get(ctx, "t")
		check("ttl-expired", err, wire.ENOENT)
	})
}

// TestMarkerSharing drives the compare-and-set loops directly: reads
// share, the table decides the rest, releases keep the other holders,
// and expired holders do not count.
func TestMarkerSharing(t *testing.T) {
	s := NewMemStore(0)
	// The marker lock's clock is the test's: holders expire when the test
	// moves it, not when the machine is slow. The store's own TTLs, set
	// from the same expiries, run on real time and are minutes long.
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	m := markerLock{store: s, prefix: "d/", maxHolders: 3, nowMs: clock.Load}
	ctx := context.Background()
	const minute = 60_000
	h := func(k Kind, op uint64, exp int64) holder {
		return holder{kind: k, instance: 42, op: op, expiryMs: clock.Load() + exp}
	}
	r1, r2, u1, u2, d1 := h(KindRead, 1, 5*minute), h(KindRead, 2, 5*minute), h(KindUpdate, 3, 5*minute), h(KindUpdate, 4, 5*minute), h(KindDelete, 5, 5*minute)
	acquire := func(res string, h holder) wire.Errno {
		e, _ := m.acquire(ctx, res, h)
		return e
	}
	holders := func() int {
		v, _, err := s.Get(ctx, "d/r")
		if err != nil {
			return 0
		}
		hs, _ := decodeMarker(v, nil)
		return len(hs)
	}
	steps := []struct {
		name    string
		run     func() wire.Errno
		want    wire.Errno
		holders int
	}{
		{"read-1", func() wire.Errno { return acquire("r", r1) }, wire.OK, 1},
		{"read-2-shares", func() wire.Errno { return acquire("r", r2) }, wire.OK, 2},
		{"delete-refused", func() wire.Errno { return acquire("r", d1) }, wire.ECONFLICT, 2},
		{"update-beside-reads", func() wire.Errno { return acquire("r", u1) }, wire.OK, 3},
		{"second-update-refused", func() wire.Errno { return acquire("r", u2) }, wire.ECONFLICT, 3},
		{"read-3-full", func() wire.Errno { return acquire("r", h(KindRead, 6, 5*minute)) }, wire.ENOSPC, 3},
		{"release-read-1", func() wire.Errno { return m.release(ctx, "r", r1) }, wire.OK, 2},
		{"release-read-1-again", func() wire.Errno { return m.release(ctx, "r", r1) }, wire.OK, 2},
		{"release-update", func() wire.Errno { return m.release(ctx, "r", u1) }, wire.OK, 1},
		{"release-read-2-deletes-key", func() wire.Errno { return m.release(ctx, "r", r2) }, wire.OK, 0},
		{"delete-alone", func() wire.Errno { return acquire("r", d1) }, wire.OK, 1},
		{"read-refused-by-delete", func() wire.Errno { return acquire("r", r1) }, wire.ECONFLICT, 1},
		{"release-delete", func() wire.Errno { return m.release(ctx, "r", d1) }, wire.OK, 0},
		{"expired-holder", func() wire.Errno { return acquire("r", h(KindDelete, 7, minute)) }, wire.OK, 1},
		{"after-expiry", func() wire.Errno {
			clock.Add(2 * minute) // the delete holder's expiry passes; u2's does not
			return acquire("r", u2)
		}, wire.OK, 1},
		{"already-expired-self", func() wire.Errno { return acquire("q", h(KindRead, 8, 0)) }, wire.ETIMEDOUT, 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got := st.run(); got != st.want {
				t.Fatalf("got %v, want %v", got, st.want)
			}
			if n := holders(); n != st.holders {
				t.Fatalf("%d holders, want %d", n, st.holders)
			}
		})
	}
	// A value that is not a marker is EPROTO, never a panic.
	if _, err := s.CAS(ctx, "d/junk", 0, []byte{9, 9, 9}, time.Second); err != nil {
		t.Fatal(err)
	}
	if e := acquire("junk", r1); e != wire.EPROTO {
		t.Fatalf("junk marker: %v", e)
	}
}

func TestConfigCheck(t *testing.T) {
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"QueueLen", func(c *Config) { c.QueueLen = 0 }},
		{"Senders", func(c *Config) { c.Senders = 0 }},
		{"Batch", func(c *Config) { c.Batch = c.QueueLen + 1 }},
		{"MaxTargets", func(c *Config) { c.MaxTargets = c.QueueLen + 1 }},
		{"MaxHolders", func(c *Config) { c.MaxHolders = 49 }},
		{"DefaultDeadline", func(c *Config) { c.DefaultDeadline = 0 }},
		{"MaxDeadline", func(c *Config) { c.MaxDeadline = c.DefaultDeadline - 1 }},
		{"PollInterval", func(c *Config) { c.PollInterval = time.Microsecond }},
		{"MarkerTTL", func(c *Config) { c.MarkerTTL = 0 }},
		// A marker lives the operation's deadline + MarkerTTL, which the
		// registry bounds (registry.MaxTTL) and a Duration must hold:
		// past them every Submit failed EINVAL, the configuration taken.
		{"MarkerTTL", func(c *Config) { c.MarkerTTL = math.MaxInt64 }},
		{"MarkerTTL", func(c *Config) { c.MarkerTTL = registry.MaxTTL + 1 }},
		{"MaxDeadline", func(c *Config) { c.MaxDeadline = math.MaxInt64 }},
		{"MaxDeadline", func(c *Config) { c.MaxDeadline = registry.MaxTTL - c.MarkerTTL + 1 }},
		{"RemoteTargets", func(c *Config) { c.RemoteTargets = []netip.AddrPort{{}} }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mod(&cfg)
			rfctest.ConfigError(t, cfg.check(), "dispatch", c.field)
		})
	}
	def := DefaultConfig()
	if err := def.check(); err != nil {
		t.Fatal(err)
	}
	// At the bound, an operation of the longest deadline gets its marker.
	ts := startTargets(t, 1)
	d := newDispatcher(t, newEP(t, 1, nil), NewMemStore(0), func(c *Config) { c.MaxDeadline = registry.MaxTTL - c.MarkerTTL })
	if _, err := d.Submit(ctxFor(t, 5*time.Second), opFor("long", KindUpdate, Call{No: callIncr}, ts.addrs(), d.cfg.MaxDeadline)); err != nil {
		t.Fatalf("Submit with the longest deadline: %v", err)
	}
}

// TestParseTargets: the target text of a CallSubmit (and of rfcctl's
// -targets) is IP:PORT items separated by commas, each non-empty. A
// trailing comma was taken for the end of the list, while an empty item
// anywhere else was EINVAL.
func TestParseTargets(t *testing.T) {
	cases := []struct {
		text string
		n    int
		want wire.Errno
	}{
		{"127.0.0.1:1", 1, wire.OK},
		{"127.0.0.1:1,127.0.0.1:2", 2, wire.OK},
		{" 127.0.0.1:1 , [::1]:2", 2, wire.OK},
		{"", 0, wire.OK},
		{"127.0.0.1:1,", 0, wire.EINVAL},
		{",127.0.0.1:1", 0, wire.EINVAL},
		{"127.0.0.1:1,,127.0.0.1:2", 0, wire.EINVAL},
		{"127.0.0.1:1, ", 0, wire.EINVAL},
		{"127.0.0.1", 0, wire.EINVAL},
	}
	for _, c := range cases {
		ts, err := ParseTargets(c.text)
		if e := errnoOf(err); e != c.want || (e == wire.OK && len(ts) != c.n) {
			t.Errorf("ParseTargets(%q) = %v, %v; want %d targets, %v", c.text, ts, err, c.n, c.want)
		}
	}
}
