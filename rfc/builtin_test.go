package rfc

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"fastcall/wire"
)

// TestStatsPageTooSmall: a stats page with room for no entry is answered
// EMSGSIZE, not with an empty page whose next cursor sends the client
// back to the same place.
func TestStatsPageTooSmall(t *testing.T) {
	srv := newTestEndpoint(t, func(c *Config) { c.MaxDatagram = 200 })
	cli := newTestEndpoint(t, nil)
	if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
		t.Fatal(err)
	}
	var rep Reply
	err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallStats, params(func(p *wire.Params) { p.Uint64(0); p.Bytes(nil) }), &rep)
	if !errors.Is(err, wire.EMSGSIZE) {
		t.Fatalf("stats on a 200-byte endpoint: %v (%d params), want EMSGSIZE", err, rep.NParams())
	}
}

// TestEngineStatsOrder: the drop counters of engine-stats come in name
// order after the fixed counters.
func TestEngineStatsOrder(t *testing.T) {
	srv := newTestEndpoint(t, nil)
	srv.stats.drops[wire.ReasonMagic].Add(1)
	srv.stats.drops[wire.ReasonShort].Add(1)
	srv.stats.tooOld.Add(1)
	srv.stats.wrongDst.Add(1)
	cli := newTestEndpoint(t, nil)
	var rep Reply
	for try := 0; try < 5; try++ {
		if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallEngineStats, params(func(p *wire.Params) { p.Bytes(make([]byte, 420)) }), &rep); err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := 0; i+1 < rep.NParams(); i += 2 {
			if n := rep.Param(i).Str(); len(n) > 5 && n[:5] == "drop-" {
				names = append(names, n)
			}
		}
		want := []string{"drop-magic", "drop-short", "drop-too-old", "drop-wrong-dst"}
		if len(names) != len(want) {
			t.Fatalf("drops %v, want %v", names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("drops %v, want %v", names, want)
			}
		}
	}
}

// TestUnknownCallsOneBucket: requests for many unregistered call numbers
// are counted in one served-side bucket (UnknownCalls), not one entry per
// number, and stats shows that bucket once.
func TestUnknownCallsOneBucket(t *testing.T) {
	srv := newTestServer(t, nil)
	// No retransmission within a call: a resent request for an unknown
	// number is served (and counted) again, as it should be.
	cli := newTestEndpoint(t, func(c *Config) { c.InitialRTO, c.MinRTO, c.MaxRTO = 2*time.Second, 2*time.Second, 2*time.Second })
	const n = 300
	for i := 0; i < n; i++ {
		no := uint16(0x2000 + i)
		if i == 0 {
			no = 0 // number 0 is never registered
		}
		if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), no, nil, nil); !errors.Is(err, wire.ENOCALL) {
			t.Fatalf("call %#x: %v, want ENOCALL", no, err)
		}
	}
	if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), callEcho, params(func(p *wire.Params) { p.Bytes([]byte("x")) }), nil); err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	var unknown *CallCounters
	for i := range st.Served {
		c := &st.Served[i]
		switch c.CallNo {
		case UnknownCalls:
			unknown = c
		case callEcho:
		default:
			t.Errorf("served entry for %#x (%s)", c.CallNo, c.Name)
		}
	}
	if unknown == nil || unknown.Errors[wire.ENOCALL] != n || unknown.Name != "unknown" {
		t.Fatalf("unknown bucket %+v, want %d ENOCALL", unknown, n)
	}
	// The stats call shows the bucket as one row, number 0, first.
	var rep Reply
	if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallStats, params(func(p *wire.Params) { p.Uint64(0); p.Bytes(make([]byte, 420)) }), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.NParams() < 11 || rep.Param(1).Uint64() != 0 || rep.Param(2).Str() != "unknown" || rep.Param(4).Uint64() != n {
		t.Fatalf("first stats row: %d params, number %d name %q errors %d", rep.NParams(), rep.Param(1).Uint64(), rep.Param(2).Str(), rep.Param(4).Uint64())
	}
	rows := 0
	for i := 1; i < rep.NParams(); i += statsEntryParams {
		if rep.Param(i).Uint64() == 0 {
			rows++
		}
	}
	if rows != 1 {
		t.Fatalf("%d rows for number 0", rows)
	}
}

// TestCallsListing reads every page of CallCalls with a small reply room
// and compares it with the registered calls.
func TestCallsListing(t *testing.T) {
	srv := newTestServer(t, nil)
	if err := srv.RegisterDeferred(wire.CallUserBase+0x100, strings.Repeat("a", nameMax-1)+"ü-later", wire.Schema{wire.TypeString, wire.TypeBool}, Inline, func(*Request, *Deferred) wire.Errno { return wire.EAGAIN }); err != nil {
		t.Fatal(err)
	}
	cli := newTestEndpoint(t, nil)
	want := srv.Calls()
	if len(want) < 12 || want[0].CallNo != CallPing {
		t.Fatalf("Calls() = %+v", want)
	}
	var got []CallInfo
	var rep Reply
	cursor := uint64(0)
	pages := 0
	for ; pages < 100; pages++ {
		// Padding of 60 bytes: a reply room of 3×137 bytes, a few entries a page.
		if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallCalls, params(func(p *wire.Params) { p.Uint64(cursor); p.Bytes(make([]byte, 60)) }), &rep); err != nil {
			t.Fatal(err)
		}
		if (rep.NParams()-1)%callsEntryParams != 0 || rep.NParams() == 1 {
			t.Fatalf("page of %d params", rep.NParams())
		}
		for i := 1; i < rep.NParams(); i += callsEntryParams {
			var sc wire.Schema
			for _, b := range rep.Param(i + 2).Bytes() {
				sc = append(sc, wire.Type(b))
			}
			f := rep.Param(i + 3).Uint64()
			got = append(got, CallInfo{CallNo: uint16(rep.Param(i).Uint64()), Name: rep.Param(i + 1).Str(), Schema: sc,
				Flags: CallFlags(f &^ InfoDeferred), Deferred: f&InfoDeferred != 0})
		}
		if cursor = rep.Param(0).Uint64(); cursor == 0 {
			break
		}
	}
	if pages < 2 {
		t.Fatalf("%d pages; want the listing to need several", pages+1)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d calls, registered %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.Name = cutName(w.Name)
		g := got[i]
		if g.CallNo != w.CallNo || g.Name != w.Name || g.Flags != w.Flags || g.Deferred != w.Deferred || !slices.Equal(g.Schema, w.Schema) {
			t.Fatalf("entry %d: got %+v, want %+v", i, g, w)
		}
	}
	last := got[len(got)-1]
	if !last.Deferred || last.Flags != Inline || len(last.Name) > nameMax {
		t.Fatalf("deferred entry %+v", last)
	}
}

// TestLatencyBuckets: the metric buckets are exact cumulative counts at
// their bounds, monotone, with the total as Count and the sum of the
// recorded times as SumNs.
func TestLatencyBuckets(t *testing.T) {
	for i := 0; i < LatencyBuckets; i++ {
		b := LatencyBoundUs(i)
		j := histIndex(b - 1)
		if histUpper(j)+1 != b || histIndex(b) != j+1 {
			t.Fatalf("bound %d µs is not a histogram bucket edge", b)
		}
	}
	var h histogram
	var sum uint64
	rec := func(ns int64) { h.record(ns); sum += uint64(ns) }
	rec(7999)           // 7 µs: below 8 µs
	rec(8000)           // 8 µs: not below 8 µs
	rec(1_000_000)      // 1 ms
	rec(int64(1) << 40) // past the last bound
	l := h.latency()
	if l.Count != 4 || l.SumNs != sum {
		t.Fatalf("count %d sum %d, want 4 and %d", l.Count, l.SumNs, sum)
	}
	if l.Counts[0] != 1 || l.Counts[1] != 2 || l.Counts[LatencyBuckets-1] != 3 {
		t.Fatalf("counts %v", l.Counts)
	}
	for i := 1; i < LatencyBuckets; i++ {
		if l.Counts[i] < l.Counts[i-1] {
			t.Fatalf("counts not monotone: %v", l.Counts)
		}
	}
	for i := 0; i < LatencyBuckets; i++ {
		want := uint64(0)
		for _, us := range []uint64{7, 8, 1000, 1 << 30} {
			if us < LatencyBoundUs(i) {
				want++
			}
		}
		if l.Counts[i] != want {
			t.Fatalf("bucket < %d µs: %d, want %d", LatencyBoundUs(i), l.Counts[i], want)
		}
	}
}

// TestDropsListsEveryReason: Drops lists every counter, zeros included,
// and agrees with Stats.Drops.
func TestDropsListsEveryReason(t *testing.T) {
	ep := newTestEndpoint(t, nil)
	ep.stats.drops[wire.ReasonTrailing].Add(2)
	ep.stats.stale.Add(1)
	ds := ep.Drops()
	if len(ds) != wire.NumReasons-1+len(dropNames) {
		t.Fatalf("%d drop counters", len(ds))
	}
	st := ep.Stats()
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[d.Reason] {
			t.Fatalf("%s twice", d.Reason)
		}
		seen[d.Reason] = true
		if st.Drops[d.Reason] != d.Count {
			t.Fatalf("%s: %d, Stats says %d", d.Reason, d.Count, st.Drops[d.Reason])
		}
	}
	if st.Drops["trailing"] != 2 || st.Drops["stale"] != 1 || len(st.Drops) != 2 {
		t.Fatalf("Stats.Drops %v", st.Drops)
	}
}

// TestStatsWithNonUTF8Name: a call registered under a name that is
// not UTF-8 does not make the CallCalls and CallStats pages undecodable.
// The pages carried the name as a str parameter as given, so every
// client's decoder refused the whole page (ReasonUTF8) and rfcctl calls
// and stats failed for the node.
func TestStatsWithNonUTF8Name(t *testing.T) {
	srv := newTestServer(t, nil)
	no := uint16(wire.CallUserBase + 0x101)
	if err := srv.Register(no, "bad\xffname", nil, Idempotent, func(*Request, *wire.Params) wire.Errno { return wire.OK }); err != nil {
		t.Fatal(err)
	}
	cli := newTestEndpoint(t, nil)
	if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), no, nil, nil); err != nil {
		t.Fatalf("call: %v", err)
	}
	for _, callNo := range []uint16{CallCalls, CallStats} {
		var rep Reply
		found := false
		cursor := uint64(0)
		for pages := 0; pages < 100; pages++ {
			err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), callNo, params(func(p *wire.Params) { p.Uint64(cursor); p.Bytes(make([]byte, 500)) }), &rep)
			if err != nil {
				t.Fatalf("call %#x page %d: %v", callNo, pages, err)
			}
			stride := callsEntryParams
			if callNo == CallStats {
				stride = statsEntryParams
			}
			for i := 1; i+1 < rep.NParams(); i += stride {
				if uint16(rep.Param(i).Uint64()) == no {
					found = true
				}
			}
			if cursor = rep.Param(0).Uint64(); cursor == 0 {
				break
			}
		}
		if !found {
			t.Fatalf("call %#x: the call is not listed", callNo)
		}
	}
}
