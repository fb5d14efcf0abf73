package rfc

import (
	"net/netip"
	"sync"

	"github.com/cespare/xxhash/v2"

	"fastcall/wire"
)

// dupKey names one request of one sender instance. addr is the address
// of the sender's home entry for an authenticated request (homeOf), else
// the request's source address.
type dupKey struct {
	addr   netip.AddrPort
	src    uint32
	incarn uint32
	callID uint64
}

const (
	dupEmpty   = 0
	dupRunning = 1 // accepted; the handler has not finished
	dupDone    = 2 // finished; rep holds the reply datagram
)

// dupEntry is one remembered request. rep is allocated on first use and
// reused by every later occupant of the entry.
type dupEntry struct {
	key   dupKey
	hash  uint64 // key.hash(), kept for probing and deletion
	sum   uint64 // requestSum of the request: only its copies are answered
	state uint8
	at    int64 // engine clock when it entered the cache
	until int64 // kept at least until then: the caller may still retransmit
	hold  int64 // a copy may arrive until then: the floor's hold once it leaves
	peer  *peerState
	from  netip.AddrPort // the address the request came from: only its copies from there are answered
	rep   []byte
	n     int
}

// dupCache is the callee's duplicate-request cache. It holds at most
// len(ents) entries in a ring in arrival order. Each entry keeps its reply
// in a buffer sized to the reply (rounded up to 64 bytes) and reused by
// later occupants, so memory is bounded by entries × MaxDatagram and is
// typically entries × 128 bytes.
//
// An entry should be kept while its caller may still retransmit: until
// the request's arrival plus its deadline budget, and never longer than
// age (budgets of zero count as age). A new request takes the oldest
// finished entry's place; if that entry is still inside its keep time it
// is counted (early), since a retransmission of it will now be refused
// with ESTALE. Only when every entry is a call still running is a new
// request answered EBUSY.
//
// Whenever an entry leaves, its sender instance's floor rises to its call
// id (peerState.raiseFloor), so a retransmission of a forgotten call is
// refused (ESTALE), never run a second time. Call ids of one sender
// instance grow monotonically, which is what makes the floor sound. The
// floor is held as long as a copy of the call may still arrive; the peer
// entry that holds it is not removed before (sweepPeers).
//
// A cached reply answers only a copy of the request it replies to: same
// call number, parameter count, length and parameter bytes (requestSum).
// Another datagram with the same key is dropped, so a small datagram
// never draws a large cached reply. Nor does a copy from another address
// than the request's own (dupElsewhere): the tag does not cover the
// source address, and an on-path attacker sending a captured request
// again from a victim's address would have the reply, up to the
// datagram limit, reflected there. A refusal below the floor (ESTALE)
// still goes to any address: it is a bare header, no larger than any
// request, so it reflects nothing an attacker could not send itself.
//
// An open-addressing index (linear probing, backward-shift deletion) maps
// keys to entries; nothing allocates in steady state. One mutex guards it
// all; critical sections are a hash probe and a copy.
type dupCache struct {
	mu     sync.Mutex
	ents   []dupEntry
	head   int     // ring position of the next entry to reuse
	index  []int32 // entry index + 1; 0 = empty
	mask   uint64
	age    int64
	limit  int    // reply buffer size
	window int64  // added to an entry's keep time for its hold
	early  uint64 // finished entries taken before their keep time ran out
	used   int    // entries not empty, kept so that len does not scan the ring under mu
}

// dupSlab is the reply space each entry starts with, carved from one
// allocation; a longer reply gets a buffer of its own, kept by the entry.
const dupSlab = 128

// init sizes the cache for n entries kept at most age. window is how long
// after its caller's last possible retransmission a copy of a request may
// still arrive and pass the age bound: the longest retransmission timeout
// plus twice MaxAge (the sender's clock may run up to MaxAge behind).
func (c *dupCache) init(n int, age int64, limit int, window int64) {
	c.ents = make([]dupEntry, n)
	slab := make([]byte, n*dupSlab)
	for i := range c.ents {
		c.ents[i].rep = slab[i*dupSlab : (i+1)*dupSlab : (i+1)*dupSlab]
	}
	sz := 1
	for sz < 2*n {
		sz <<= 1
	}
	c.index = make([]int32, sz)
	c.mask = uint64(sz - 1)
	c.age = age
	c.limit = limit
	c.window = window
}

// requestSum names a request's content for the duplicate cache: the fields
// a retransmission keeps (call number, parameter count, length, parameter
// segment). The fields it rewrites (flags, budget, stamp, tag) are left
// out, and the key's fields are compared apart.
func requestSum(p *wire.Packet) uint64 {
	return fmix64(xxhash.Sum64(p.Segment()) ^ uint64(p.CallNo)<<48 ^ uint64(p.NParams())<<32 ^ uint64(p.Len))
}

// hash mixes every field of the key through a 64-bit finalizer, so that
// keys differing only in the high bits of the call id (one sender's calls
// from one pending slot: seq<<20 | slot) spread over the whole index.
func (k *dupKey) hash() uint64 {
	a := k.addr.Addr().As16()
	h := fmix64(be64u(a[0:8]) ^ 0x9e3779b97f4a7c15)
	h = fmix64(h ^ be64u(a[8:16]))
	h = fmix64(h ^ (uint64(k.addr.Port())<<32 | uint64(k.src)))
	return fmix64(h ^ uint64(k.incarn)<<32 ^ k.callID)
}

// fmix64 is MurmurHash3's 64-bit finalizer: every input bit affects every
// output bit.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func be64u(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// findLocked returns the index slot holding k, whose hash is h, or -1.
func (c *dupCache) findLocked(k *dupKey, h uint64) int {
	for i := h & c.mask; ; i = (i + 1) & c.mask {
		e := c.index[i]
		if e == 0 {
			return -1
		}
		if ent := &c.ents[e-1]; ent.hash == h && ent.key == *k {
			return int(i)
		}
	}
}

// unindexLocked removes index slot i with backward-shift deletion.
func (c *dupCache) unindexLocked(i int) {
	j := uint64(i)
	for {
		c.index[j] = 0
		k := j
		for {
			k = (k + 1) & c.mask
			e := c.index[k]
			if e == 0 {
				return
			}
			home := c.ents[e-1].hash & c.mask
			// Move e back to j if its home is not in (j, k].
			if (j < k && (home <= j || home > k)) || (j > k && home <= j && home > k) {
				c.index[j] = e
				j = k
				break
			}
		}
	}
}

// evictLocked frees entry i at engine time now, raising its sender
// instance's floor.
func (c *dupCache) evictLocked(i int, now int64) {
	e := &c.ents[i]
	if e.state == dupEmpty {
		return
	}
	if s := c.findLocked(&e.key, e.hash); s >= 0 {
		c.unindexLocked(s)
	}
	if e.peer != nil {
		e.peer.raiseFloor(e.key.src, e.key.incarn, e.key.callID, e.hold, now)
		e.peer.dupRefs--
	}
	e.state = dupEmpty
	e.peer = nil
	c.used--
}

// Outcomes of dupCache.begin.
const (
	dupNew       = iota // recorded as running; run the call
	dupBusy             // a retransmission of a call still running: drop it
	dupReplay           // finished: resend the cached reply (copied to out)
	dupStale            // below the sender's floor: refuse with ESTALE
	dupFull             // every entry is running, or the peer left the table or the home was released: answer EBUSY
	dupOther            // same key, other content than the cached request: drop it
	dupElsewhere        // finished, and from another address than the request's: drop it
)

// begin looks k up and, if new, records it as running, to be kept until
// keep (capped at now+age); keep is when its caller stops retransmitting.
// sum is the request's requestSum, from the address it came from. A
// finished copy from another address than its entry's is dupElsewhere
// (for a running one, dupBusy drops it anyway). For dupReplay
// the cached reply is copied into out and its length returned. It returns
// the entry index for end. home, if not nil, is the sender's home at peer
// (homeOf): one the sweep released is dupFull, and a new entry raises its
// until to the entry's hold, so the sweep keeps the home while a copy may
// meet the entry or its floor.
func (c *dupCache) begin(k *dupKey, sum uint64, peer *peerState, home *homeRec, from netip.AddrPort, now, keep int64, out []byte) (outcome int, n int, ent int32) {
	h := k.hash()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.findLocked(k, h); s >= 0 {
		ei := c.index[s] - 1
		e := &c.ents[ei]
		if e.sum != sum {
			return dupOther, 0, -1
		}
		if e.state == dupRunning {
			return dupBusy, 0, -1
		}
		if now-e.at <= c.age {
			if e.from != from {
				return dupElsewhere, 0, -1
			}
			return dupReplay, copy(out, e.rep[:e.n]), -1
		}
		c.evictLocked(int(ei), now)
	}
	if peer.gone || home != nil && home.gone {
		return dupFull, 0, -1
	}
	if peer.belowFloor(k.src, k.incarn, k.callID, now) {
		return dupStale, 0, -1
	}
	if keep <= now {
		keep = now + c.age
	}
	hold := keep + c.window
	if keep > now+c.age {
		keep = now + c.age
	}
	// Take the ring's next entry, skipping entries still running. A
	// finished entry still inside its keep time is taken too when it is
	// the oldest: its caller most likely has its reply, and if that reply
	// was lost, the floor answers the retransmission ESTALE rather than
	// run the call again.
	for tries := 0; tries < len(c.ents); tries++ {
		i := c.head
		e := &c.ents[i]
		expired := now-e.at > c.age
		if e.state == dupDone && now < e.until && !expired {
			c.early++
		}
		c.head++
		if c.head == len(c.ents) {
			c.head = 0
		}
		if e.state == dupRunning && !expired {
			continue
		}
		c.evictLocked(i, now)
		e.key = *k
		e.hash = h
		e.sum = sum
		e.state = dupRunning
		c.used++
		e.at = now
		e.until = keep
		e.hold = hold
		e.peer = peer
		e.from = from
		peer.dupRefs++
		if home != nil && hold > home.until {
			home.until = hold
		}
		e.n = 0
		for s := h & c.mask; ; s = (s + 1) & c.mask {
			if c.index[s] == 0 {
				c.index[s] = int32(i + 1)
				break
			}
		}
		return dupNew, 0, int32(i)
	}
	return dupFull, 0, -1
}

// end stores the reply of entry ent (rep may be empty for one-way calls)
// and marks it finished.
func (c *dupCache) end(ent int32, k *dupKey, rep []byte) {
	if ent < 0 {
		return
	}
	c.mu.Lock()
	e := &c.ents[ent]
	if e.state == dupRunning && e.key == *k {
		if cap(e.rep) < len(rep) {
			e.rep = make([]byte, (len(rep)+63)&^63)
		}
		e.n = copy(e.rep[:cap(e.rep)], rep)
		e.rep = e.rep[:cap(e.rep)]
		e.state = dupDone
	}
	c.mu.Unlock()
}

// forget removes entry ent without raising the floor: the call did not
// run (it was refused before reaching a handler).
func (c *dupCache) forget(ent int32, k *dupKey) {
	if ent < 0 {
		return
	}
	c.mu.Lock()
	e := &c.ents[ent]
	if e.state == dupRunning && e.key == *k {
		if s := c.findLocked(k, e.hash); s >= 0 {
			c.unindexLocked(s)
		}
		if e.peer != nil {
			e.peer.dupRefs--
		}
		e.state = dupEmpty
		e.peer = nil
		c.used--
	}
	c.mu.Unlock()
}

// len returns the number of occupied entries (for stats and tests). It
// reads a count: a scan of the ring would hold mu, which the reader
// takes for every non-idempotent request, for as long as it takes to
// walk every entry, on each stats request anyone may send.
func (c *dupCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// earlyCount returns how many finished entries were taken before their
// keep time ran out.
func (c *dupCache) earlyCount() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.early
}
