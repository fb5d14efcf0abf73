package rfc

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

func TestRTTUpdate(t *testing.T) {
	const ms = int64(time.Millisecond)
	min, max := 2*ms, 1000*ms
	cases := []struct {
		name   string
		in     rttState
		sample int64
		srtt   int64
		rttvar int64
		rto    int64
	}{
		{"first sample", rttState{}, 10 * ms, 10 * ms, 5 * ms, 30 * ms},
		{"steady", rttState{srtt: 8 * ms, rttvar: 4 * ms}, 8 * ms, 8 * ms, 3 * ms, 20 * ms},
		{"spike", rttState{srtt: 8 * ms, rttvar: 0}, 16 * ms, 9 * ms, 2 * ms, 17 * ms},
		{"clamped low", rttState{}, 10000, 10000, 5000, min},
		{"clamped high", rttState{}, 900 * ms, 900 * ms, 450 * ms, max},
		{"zero sample", rttState{}, 0, 1, 0, min},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := rttUpdate(tc.in, tc.sample, min, max)
			if got.srtt != tc.srtt || got.rttvar != tc.rttvar || got.rto != tc.rto {
				t.Fatalf("got %+v, want srtt %d rttvar %d rto %d", got, tc.srtt, tc.rttvar, tc.rto)
			}
		})
	}
	if backoff(3*ms, max) != 6*ms || backoff(600*ms, max) != max || backoff(max, max) != max {
		t.Fatal("backoff")
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	if h.percentile(0.5) != 0 {
		t.Fatal("empty")
	}
	for i := 1; i <= 1000; i++ {
		h.record(int64(i) * 1000) // 1..1000 µs
	}
	for _, q := range []struct {
		q    float64
		want uint64
	}{{0.5, 500}, {0.99, 990}, {1, 1000}} {
		got := h.percentile(q.q)
		if got < q.want || float64(got) > float64(q.want)*1.26 {
			t.Fatalf("p%v = %d, want about %d", q.q, got, q.want)
		}
	}
	for us := uint64(0); us < 1<<20; us = us*2 + 1 {
		i := histIndex(us)
		if histUpper(i) < us || (i > 0 && histUpper(i-1) >= us) {
			t.Fatalf("value %d in bucket %d with upper %d", us, i, histUpper(i))
		}
	}
}

func TestDupCache(t *testing.T) {
	var c dupCache
	c.init(16, int64(time.Minute), 1400, int64(time.Second))
	peer := &peerState{}
	addr := netip.MustParseAddrPort("127.0.0.1:9")
	key := func(id uint64) dupKey { return dupKey{addr: addr, src: 1, incarn: 7, callID: id} }
	out := make([]byte, 1400)
	now := int64(time.Second)
	k := key(1)
	o, _, ent := c.begin(&k, 0, peer, nil, peer.addr, now, now+10, out)
	if o != dupNew {
		t.Fatalf("new: %d", o)
	}
	if o, _, _ := c.begin(&k, 0, peer, nil, peer.addr, now, now+10, out); o != dupBusy {
		t.Fatalf("running duplicate: %d", o)
	}
	c.end(ent, &k, []byte("reply-1"))
	if o, n, _ := c.begin(&k, 0, peer, nil, peer.addr, now, now+10, out); o != dupReplay || string(out[:n]) != "reply-1" {
		t.Fatalf("finished duplicate: %d %q", o, out[:n])
	}
	// Fill the ring with finished entries still inside their keep time:
	// the next request takes the oldest one's place, and the floor rises.
	for id := uint64(2); id <= 16; id++ {
		k := key(id)
		o, _, e := c.begin(&k, 0, peer, nil, peer.addr, now, now+int64(time.Second), out)
		if o != dupNew {
			t.Fatalf("id %d: %d", id, o)
		}
		c.end(e, &k, []byte("r"))
	}
	k17 := key(17)
	later := now + 100
	if o, _, _ := c.begin(&k17, 0, peer, nil, peer.addr, later, later+int64(time.Second), out); o != dupNew || c.earlyCount() != 0 {
		t.Fatalf("entry past its keep time: %d, early %d", o, c.earlyCount())
	}
	if !peer.belowFloor(1, 7, 1, later) || peer.belowFloor(1, 7, 2, later) {
		t.Fatal("floor is not call id 1")
	}
	if o, _, _ := c.begin(&k, 0, peer, nil, peer.addr, later, later+10, out); o != dupStale {
		t.Fatalf("retransmission of a forgotten call: %d", o)
	}
	// The next oldest (id 2) is finished but inside its keep time: it is
	// taken anyway, counted, and its retransmission refused.
	k18 := key(18)
	if o, _, _ := c.begin(&k18, 0, peer, nil, peer.addr, later, later+int64(time.Second), out); o != dupNew || c.earlyCount() != 1 {
		t.Fatalf("finished entry inside its keep time: %d, early %d", o, c.earlyCount())
	}
	k2 := key(2)
	if o, _, _ := c.begin(&k2, 0, peer, nil, peer.addr, later, later+10, out); o != dupStale {
		t.Fatalf("retransmission of an entry taken early: %d", o)
	}
	// A ring of running calls answers EBUSY.
	c3 := dupCache{}
	c3.init(16, int64(time.Minute), 1400, int64(time.Second))
	p3 := &peerState{}
	for id := uint64(1); id <= 16; id++ {
		k := key(id)
		if o, _, _ := c3.begin(&k, 0, p3, nil, p3.addr, now, now+10, out); o != dupNew {
			t.Fatal(o)
		}
	}
	k99 := key(99)
	if o, _, _ := c3.begin(&k99, 0, p3, nil, p3.addr, now, now+10, out); o != dupFull {
		t.Fatalf("ring of running calls: %d", o)
	}
	// forget leaves no trace and does not raise the floor.
	k18 = key(19)
	c2 := dupCache{}
	c2.init(16, int64(time.Minute), 1400, int64(time.Second))
	p2 := &peerState{}
	_, _, e := c2.begin(&k18, 0, p2, nil, p2.addr, now, now+10, out)
	c2.forget(e, &k18)
	if c2.len() != 0 || p2.belowFloor(1, 7, 1, now) {
		t.Fatal("forget")
	}
	if o, _, _ := c2.begin(&k18, 0, p2, nil, p2.addr, now, now+10, out); o != dupNew {
		t.Fatal("after forget")
	}
}

// The duplicate cache's index stays short-probed for the keys one sender
// actually produces: call ids seq<<20|slot from a handful of pending
// slots, so only the high bits change. A hash that leaves those bits
// out of the index position builds clusters that every lookup and every
// deletion walks.
func TestDupCacheSpread(t *testing.T) {
	const n = 1 << 14
	var c dupCache
	c.init(n, int64(time.Minute), 1400, int64(time.Second))
	peer := &peerState{}
	addr := netip.MustParseAddrPort("127.0.0.1:40000")
	out := make([]byte, 1400)
	now := int64(time.Second)
	for seq := uint64(1); seq <= 3*n; seq++ {
		k := dupKey{addr: addr, src: 9, incarn: 3, callID: seq<<20 | seq%4}
		o, _, e := c.begin(&k, 0, peer, nil, peer.addr, now, now+1, out)
		if o != dupNew {
			t.Fatalf("seq %d: outcome %d", seq, o)
		}
		c.end(e, &k, []byte("r"))
	}
	total, worst, used := 0, 0, 0
	for i, e := range c.index {
		if e == 0 {
			continue
		}
		home := int(c.ents[e-1].key.hash() & c.mask)
		d := (i - home) & int(c.mask)
		total += d
		used++
		worst = max(worst, d)
	}
	mean := float64(total) / float64(used)
	t.Logf("%d entries indexed, mean probe distance %.2f, worst %d", used, mean, worst)
	if used != n {
		t.Fatalf("%d entries indexed, want %d", used, n)
	}
	if mean > 2 || worst > 64 {
		t.Fatalf("clustered index: mean probe distance %.2f, worst %d", mean, worst)
	}
}

// TestCeilMs: a duration travels as whole milliseconds rounded up, so a
// positive one is never 0 (which receivers read as none or the default),
// and a negative one rounds toward zero, its ceiling.
func TestCeilMs(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0},
		{time.Nanosecond, 1},
		{time.Millisecond - 1, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{1500 * time.Microsecond, 2},
		{10 * time.Second, 10000},
		{-time.Nanosecond, 0},
		{-1500 * time.Microsecond, -1},
		{-2 * time.Millisecond, -2},
		{math.MaxInt64, math.MaxInt64/int64(time.Millisecond) + 1},
		{math.MinInt64, math.MinInt64 / int64(time.Millisecond)},
	} {
		if got := CeilMs(c.d); got != c.want {
			t.Errorf("CeilMs(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}
