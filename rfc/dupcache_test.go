package rfc

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// Tests of the duplicate-request cache (dupcache.go) and of the floors a
// sender's evicted entries leave in its peer entry (peers.go): the
// cache's edges, a floor that never falls, and the floor records of a
// sender's instances.

// TestStrictFloorSparesNewInstance: a sender restarted more often than
// there are floor records does not lock its newest instance out. The
// records taken over fold into strict, which still refuses the calls of
// the instances that lost their records; a new instance, whose call ids
// start at a random point that may lie below strict's floor, has its
// calls served (before, strict refused every instance at the address
// until its hold: sim RFC seed 600060, a restarted sender refused ESTALE
// for the rest of the run).
func TestStrictFloorSparesNewInstance(t *testing.T) {
	p := &peerState{}
	const now, hold = 10, 1000
	// Six instances of node 1 at one address, each leaving a high floor.
	for inc := uint32(1); inc <= peerFloors+2; inc++ {
		p.raiseFloor(1, inc, 1<<40+uint64(inc), hold+int64(inc), now)
	}
	// The two taken over are still refused at and below their floors.
	for inc := uint32(1); inc <= 2; inc++ {
		if !p.belowFloor(1, inc, 1<<40+uint64(inc), now) || !p.belowFloor(1, inc, 5, now) {
			t.Fatalf("instance %d, whose record was taken over: a forgotten call may run again", inc)
		}
	}
	// New instances, with call ids far below strict's floor, are served
	// unless both their bits happen to be set (a few in a thousand).
	refused := 0
	for inc := uint32(1000); inc < 2000; inc++ {
		if p.belowFloor(1, inc, 5, now) {
			refused++
		}
	}
	if refused > 50 {
		t.Fatalf("%d of 1000 new instances refused by strict", refused)
	}
	// Once strict's hold has passed, the next fold starts it anew.
	p.raiseFloor(1, 77, 9, hold+10_000, hold+5000)
	if p.belowFloor(1, 1, 5, hold+5001) {
		t.Fatal("strict held past its hold")
	}
}

// TestFloorRecordTakenBackLower: entries of one sender instance
// leave the duplicate cache out of call-id order when an older call is
// still running as the ring passes it. Instance A's record (floor a2) is
// taken over by a fifth instance and folds into the strict floor; then
// A's older call a1 leaves and makes A a new record with floor a1 < a2.
// A copy of a2, which ran, must still be refused, not judged against the
// lower record alone. In virtual time: a1 runs its 1.5 s with no real
// wait.
// a1Sleep is how long the call a1 runs.
const a1Sleep = 1500 * time.Millisecond

func TestFloorRecordTakenBackLower(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		s := w.server(func(c *Config) { c.DupEntries = 16 })
		raw := w.rawSender(s.Addr(), nil, 1, 1)
		inc := s.Incarnation()
		req := func(src uint32, callNo uint16, id uint64, f func(*wire.Params)) []byte {
			return raw.encode(wire.Header{Flags: wire.FlagRequest, CallNo: callNo, Src: src, Incarnation: src * 10,
				CallID: id, PeerInc: inc, Budget: 5_000_000, Stamp: nowStamp()}, f)
		}
		const a, b, c, d, e = 1, 2, 3, 4, 5
		seq := uint64(0)
		next := func() uint64 { seq++; return seq << 20 }
		// answer sends b and returns the error number of the answer to call
		// id (a1's answer comes at some point in between).
		answer := func(b []byte, id uint64) wire.Errno {
			t.Helper()
			raw.send(b)
			for {
				pk, _, ok := raw.recv(2 * time.Second)
				if !ok {
					return wire.ETIMEDOUT
				}
				if pk.CallID == id {
					return pk.Errno
				}
			}
		}
		call := func(src uint32) {
			t.Helper()
			id := next()
			if got := answer(req(src, callIncr, id, nil), id); got != wire.OK {
				t.Fatalf("call from instance %d: %v", src, got)
			}
		}
		// a1: a call of A still running while the ring passes its entry.
		a1 := next()
		raw.send(req(a, callSleep, a1, func(p *wire.Params) { p.Int64(a1Sleep.Milliseconds()) }))
		a2 := next()
		a2req := req(a, callIncr, a2, nil)
		if got := answer(a2req, a2); got != wire.OK {
			t.Fatalf("a2: %v", got)
		}
		// Entries 2..15: C, D, E, then B.
		for _, src := range []uint32{c, d, e} {
			call(src)
		}
		for i := 0; i < 11; i++ {
			call(b)
		}
		// The ring passes a1 (running), evicts a2 (A's record, floor a2),
		// C, D and E (records of their own), then B's first entry: B takes
		// over A's record (the shortest held), A's floor folds into strict.
		for i := 0; i < 5; i++ {
			call(b)
		}
		// Wait for a1 to end, then go round to its entry: a1 leaves, and A
		// gets a record again, with floor a1.
		time.Sleep(a1Sleep)
		synctest.Wait()
		s.dup.mu.Lock()
		st := s.dup.ents[0].state
		s.dup.mu.Unlock()
		if st != dupDone {
			t.Fatalf("a1's entry is %v %v after its call began, want done", st, a1Sleep)
		}
		for i := 0; i < 11; i++ {
			call(b)
		}
		runs := s.runs.Load()
		// A copy of a2 (it ran): refused.
		got := answer(req(a, callIncr, a2, nil), a2)
		if n := s.runs.Load(); n != runs {
			t.Fatalf("a copy of a2 ran again (answer %v)", got)
		}
		if got != wire.ESTALE {
			t.Fatalf("a copy of a2: %v, want ESTALE", got)
		}
	})
}

// TestDupCacheEdges: the outcomes of dupCache.begin at its edges. A
// datagram with a cached request's key but other content is dropped
// (dupOther) and leaves the entry to answer the real copies; a finished
// entry answers copies up to exactly its age bound, and past it leaves
// the cache, raising the floor, so a copy is refused (dupStale), never
// run; a peer removed from the table takes no new entry (dupFull); a
// finished entry answers only copies from its request's address
// (dupElsewhere, dropped, for others).
func TestDupCacheEdges(t *testing.T) {
	const age = int64(time.Minute)
	addr := netip.MustParseAddrPort("127.0.0.1:9")
	key := func(id uint64) dupKey { return dupKey{addr: addr, src: 1, incarn: 7, callID: id} }
	out := make([]byte, 1400)
	const now, sum, other = int64(time.Second), 11, 12
	newCache := func(t *testing.T) (*dupCache, *peerState, dupKey) {
		var c dupCache
		c.init(16, age, 1400, int64(time.Second))
		peer := &peerState{}
		k := key(1 << slotBits)
		o, _, ent := c.begin(&k, sum, peer, nil, peer.addr, now, now+10, out)
		if o != dupNew {
			t.Fatalf("new: %d", o)
		}
		c.end(ent, &k, []byte("reply-1"))
		return &c, peer, k
	}
	t.Run("other content", func(t *testing.T) {
		c, peer, k := newCache(t)
		if o, n, _ := c.begin(&k, other, peer, nil, peer.addr, now, now+10, out); o != dupOther || n != 0 {
			t.Fatalf("same key, other content: outcome %d, %d bytes", o, n)
		}
		if o, n, _ := c.begin(&k, sum, peer, nil, peer.addr, now, now+10, out); o != dupReplay || string(out[:n]) != "reply-1" {
			t.Fatalf("copy after a datagram with other content: outcome %d %q", o, out[:n])
		}
	})
	t.Run("other address", func(t *testing.T) {
		c, peer, k := newCache(t)
		elsewhere := netip.MustParseAddrPort("127.0.0.2:9")
		if o, n, _ := c.begin(&k, sum, peer, nil, elsewhere, now, now+10, out); o != dupElsewhere || n != 0 {
			t.Fatalf("copy from another address: outcome %d, %d bytes", o, n)
		}
		if o, n, _ := c.begin(&k, sum, peer, nil, peer.addr, now, now+10, out); o != dupReplay || string(out[:n]) != "reply-1" {
			t.Fatalf("copy from the request's address after one from another: outcome %d %q", o, out[:n])
		}
	})
	t.Run("age bound", func(t *testing.T) {
		c, peer, k := newCache(t)
		if o, n, _ := c.begin(&k, sum, peer, nil, peer.addr, now+age, now+age+10, out); o != dupReplay || string(out[:n]) != "reply-1" {
			t.Fatalf("copy at the age bound: outcome %d %q", o, out[:n])
		}
		if o, _, _ := c.begin(&k, sum, peer, nil, peer.addr, now+age+1, now+age+10, out); o != dupStale {
			t.Fatalf("copy past the age bound: outcome %d, want dupStale", o)
		}
		if c.len() != 0 {
			t.Fatalf("%d entries after the only one aged out", c.len())
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		c, peer, _ := newCache(t)
		peer.gone = true
		k2 := key(2 << slotBits)
		if o, _, _ := c.begin(&k2, sum, peer, nil, peer.addr, now, now+10, out); o != dupFull {
			t.Fatalf("new request of a removed peer: outcome %d, want dupFull", o)
		}
	})
	t.Run("late end", func(t *testing.T) {
		// A handler that outlived the age bound lost its entry to a
		// new request: its end must not answer that request's copies.
		var c dupCache
		c.init(1, age, 1400, int64(time.Second))
		peer := &peerState{}
		k1, k2 := key(1<<slotBits), key(2<<slotBits)
		_, _, e1 := c.begin(&k1, sum, peer, nil, peer.addr, now, now+10, out)
		if o, _, _ := c.begin(&k2, sum, peer, nil, peer.addr, now+age+1, now+age+10, out); o != dupNew {
			t.Fatalf("new request in the place of an expired running one: outcome %d", o)
		}
		c.end(e1, &k1, []byte("reply-1"))
		if o, n, _ := c.begin(&k2, sum, peer, nil, peer.addr, now+age+2, now+age+10, out); o != dupBusy {
			t.Fatalf("copy of a running request after another's late end: outcome %d %q, want dupBusy", o, out[:n])
		}
	})
	t.Run("hash collision", func(t *testing.T) {
		// The key hash folds incarnation and call id together by xor,
		// so another incarnation of the sender has a call id with the
		// same hash; only the key itself tells the two requests apart.
		c, peer, k := newCache(t)
		k2 := k
		k2.incarn = k.incarn ^ 1
		k2.callID = k.callID ^ 1<<32
		if k2.hash() != k.hash() {
			t.Fatal("the keys do not collide: the test needs another construction")
		}
		if o, n, _ := c.begin(&k2, sum, peer, nil, peer.addr, now, now+10, out); o != dupNew {
			t.Fatalf("another request with a colliding hash: outcome %d %q, want dupNew", o, out[:n])
		}
	})
}

// Entries leave the duplicate cache out of call-id order (a running one
// is passed over and leaves later), so a floor raised by a later call id
// must not fall back when an earlier one leaves after it: the later
// call's copies stay refused.
func TestDupFloorNeverFalls(t *testing.T) {
	p := &peerState{}
	const now, hold = int64(time.Second), int64(time.Minute)
	p.raiseFloor(1, 7, 9<<slotBits, hold, now)
	p.raiseFloor(1, 7, 4<<slotBits, hold, now)
	if !p.belowFloor(1, 7, 9<<slotBits, now) {
		t.Fatal("the floor fell below a call that left the cache")
	}
	if p.belowFloor(1, 7, 10<<slotBits, now) {
		t.Fatal("a call above every one that left is below the floor")
	}
}

// TestDupCacheLenCounts: the cache's entry count (len, what engine-stats
// reports) is kept as entries are taken, given way, aged out and
// forgotten, and agrees with a walk of the ring (the slow reference)
// after every step of a random run: begin, end and forget at random over
// a small ring, with time advancing past the age bound now and then.
func TestDupCacheLenCounts(t *testing.T) {
	const age = int64(time.Second)
	var c dupCache
	c.init(16, age, 1400, age)
	peer := &peerState{}
	addr := netip.MustParseAddrPort("127.0.0.1:9")
	out := make([]byte, 1400)
	r := simnet.NewRand(7)
	type started struct {
		ent int32
		key dupKey
	}
	var running []started
	now := age
	for i := 0; i < 20000; i++ {
		now += int64(r.Below(uint64(age / 50)))
		switch r.Below(3) {
		case 0:
			k := dupKey{addr: addr, src: 1, incarn: uint32(r.Below(3)), callID: r.Below(64) << slotBits}
			if o, _, ent := c.begin(&k, 0, peer, nil, peer.addr, now, now+int64(r.Below(uint64(2*age))), out); o == dupNew {
				running = append(running, started{ent, k})
			}
		case 1, 2:
			if len(running) == 0 {
				continue
			}
			j := int(r.Below(uint64(len(running))))
			s := running[j]
			running = append(running[:j], running[j+1:]...)
			if r.Chance(0.2) {
				c.forget(s.ent, &s.key)
			} else {
				c.end(s.ent, &s.key, []byte("r"))
			}
		}
		walked := 0
		for j := range c.ents {
			if c.ents[j].state != dupEmpty {
				walked++
			}
		}
		if n := c.len(); n != walked {
			t.Fatalf("step %d: len %d, %d entries in the ring", i, n, walked)
		}
	}
}
