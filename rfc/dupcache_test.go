package rfc

import (
	"net/netip"
	"testing"
	"time"
)

// TestDupCacheEdges: the outcomes of dupCache.begin at its edges. A
// datagram with a cached request's key but other content is dropped
// (dupOther) and leaves the entry to answer the real copies; a finished
// entry answers copies up to exactly its age bound, and past it leaves
// the cache, raising the floor, so a copy is refused (dupStale), never
// run; a peer removed from the table takes no new entry (dupFull).
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
		o, _, ent := c.begin(&k, sum, peer, now, now+10, out)
		if o != dupNew {
			t.Fatalf("new: %d", o)
		}
		c.end(ent, &k, []byte("reply-1"))
		return &c, peer, k
	}
	t.Run("other content", func(t *testing.T) {
		c, peer, k := newCache(t)
		if o, n, _ := c.begin(&k, other, peer, now, now+10, out); o != dupOther || n != 0 {
			t.Fatalf("same key, other content: outcome %d, %d bytes", o, n)
		}
		if o, n, _ := c.begin(&k, sum, peer, now, now+10, out); o != dupReplay || string(out[:n]) != "reply-1" {
			t.Fatalf("copy after a datagram with other content: outcome %d %q", o, out[:n])
		}
	})
	t.Run("age bound", func(t *testing.T) {
		c, peer, k := newCache(t)
		if o, n, _ := c.begin(&k, sum, peer, now+age, now+age+10, out); o != dupReplay || string(out[:n]) != "reply-1" {
			t.Fatalf("copy at the age bound: outcome %d %q", o, out[:n])
		}
		if o, _, _ := c.begin(&k, sum, peer, now+age+1, now+age+10, out); o != dupStale {
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
		if o, _, _ := c.begin(&k2, sum, peer, now, now+10, out); o != dupFull {
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
		_, _, e1 := c.begin(&k1, sum, peer, now, now+10, out)
		if o, _, _ := c.begin(&k2, sum, peer, now+age+1, now+age+10, out); o != dupNew {
			t.Fatalf("new request in the place of an expired running one: outcome %d", o)
		}
		c.end(e1, &k1, []byte("reply-1"))
		if o, n, _ := c.begin(&k2, sum, peer, now+age+2, now+age+10, out); o != dupBusy {
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
		if o, n, _ := c.begin(&k2, sum, peer, now, now+10, out); o != dupNew {
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
