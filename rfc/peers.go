package rfc

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// PeerState is what the engine believes of a peer.
type PeerState uint8

const (
	PeerAlive   PeerState = iota // heard recently, or never failed
	PeerSuspect                  // several consecutive calls timed out
	PeerDead                     // declared dead (by MarkDead): calls fail with ENODEAD
)

func (s PeerState) String() string {
	switch s {
	case PeerAlive:
		return "alive"
	case PeerSuspect:
		return "suspect"
	case PeerDead:
		return "dead"
	}
	return "?"
}

// peerState is one peer, keyed by its UDP address. Fields under mu are the
// round-trip estimator and the duplicate-cache floors; dupRefs and gone
// are guarded by the endpoint's dupCache.mu; the rest are atomic.
type peerState struct {
	addr      netip.AddrPort
	lastHeard atomic.Int64  // engine clock, ns, of the last sign of life; 0 = never
	taken     atomic.Int64  // engine clock when get last returned the entry (under peerTable.mu)
	stamp     atomic.Uint64 // stampHeard | the highest stamp heard (noteStamp); 0 = none
	created   int64         // engine clock when the entry was made
	state     atomic.Uint32
	misses    atomic.Int32 // consecutive timed-out calls
	node      atomic.Uint32
	incarn    atomic.Uint32
	calling   atomic.Uint64 // sweep generation that found a call parked on the peer
	// otherID is set when a request from this address named another
	// node id than node (known, non-zero): it was no sign of life (see
	// noteHeard), and calls go out with destination 0 until a matched
	// reply names the node again, so that a node restarted at this
	// address with a new id answers and its reply teaches it.
	otherID atomic.Bool
	// homed is the sender (senderKey) whose home a request from this
	// address last made sure of (learnSender), 0 = none: it spares the
	// sender's next requests a look at the home map. The sweep clears
	// it when it removes that home.
	homed atomic.Uint64

	dupRefs int  // duplicate-cache entries naming this peer (dupCache.mu)
	gone    bool // removed from the table: begin refuses it (dupCache.mu)

	mu struct {
		sync.Mutex
		rtt rttState
		// floors are the duplicate-cache floors of the sender instances
		// (node id, incarnation) seen at this address; strict holds
		// what records taken over while still held left behind.
		floors [peerFloors]dupFloor
		strict dupFloor
	}

	// idx is the entry's place in peerTable.list, and homes the homes
	// of the senders it was made home of (homeOf): the sweep removes an
	// entry and the homes it holds without a walk of either map. Both
	// under peerTable.mu. Last, so that the fields above keep their
	// places in the entry's cache lines.
	idx   int
	homes []*homeRec
}

// homeRec is the home of sender k (senderKey): the entry p that judges
// its authenticated non-idempotent requests (homeOf), made at engine time
// made. until is the latest hold (dupCache.begin) of a request of k
// judged at p: till then a copy of one may meet its cache entry or floor
// there. until and gone are guarded by the endpoint's dupCache.mu, the
// rest by peerTable.mu.
type homeRec struct {
	k     uint64
	p     *peerState
	made  int64
	until int64
	gone  bool // released by the sweep: begin refuses it (dupCache.mu)
}

// dupFloor is the duplicate-cache floor of one sender instance: floor is
// the highest call id of (src, inc) that left the cache, and hold the
// engine time until which a copy of any of those calls may still arrive
// (its caller's deadline, plus the longest retransmission timeout, plus
// twice the age bound that a replayed copy's stamp must pass). After hold
// the record proves nothing any more and may be reused.
type dupFloor struct {
	src, inc uint32
	floor    uint64
	hold     int64
	mask     uint64 // strict only: instBits of every instance folded in
}

// instBits returns the two bits of a 64-bit mask that stand for sender
// instance (src, inc) in strict's mask: an instance whose record was
// taken over always finds its bits set there, and another instance finds
// both of its bits set only by chance (a few in a thousand with two
// instances folded in), so that strict refuses the calls of the instances
// that lost their records, not those of every instance at the address.
func instBits(src, inc uint32) uint64 {
	h := (uint64(src)<<32 | uint64(inc)) * 0x9e3779b97f4a7c15
	return 1<<(h>>58) | 1<<(h>>52&63)
}

// peerFloors is how many sender instances of one address keep a floor of
// their own at once: a live sender changes incarnation when it refutes a
// suspicion, and calls of its earlier incarnations may still be
// retransmitted for their deadline.
const peerFloors = 4

// peerTable maps addresses to peers. Lookups take the read lock; a new
// peer takes the write lock once.
//
// Peers this endpoint calls or marks (get) are always tracked. A peer
// learnt from an incoming datagram (learn, learnSender) is tracked only
// while the table holds fewer than max entries, and only after the
// datagram passed its tag and the age bound; an authenticated request
// makes no entry when it is no later than what its sender's home heard
// (learnSender). sweep removes idle entries: see sweepPeers.
type peerTable struct {
	mu      sync.RWMutex
	m       map[netip.AddrPort]*peerState
	max     int
	initRTO int64
	now     func() int64 // the engine clock
	// copyFor is how long (engine ns) after a home last heard a copy of
	// a request it heard may still pass the age bound: twice MaxAge (its
	// stamp within MaxAge of the home's clock then, and of this one's
	// now); 0 = always, the age bound being off (learnSender).
	copyFor int64

	// home maps a sender (senderKey) to its home: the entry (one of
	// m's) that holds the duplicate-cache entries and floors of its
	// authenticated requests, from whatever address they come (homeOf),
	// and whose stamp tells a copy of them (learnSender). Under mu.
	home map[uint64]*homeRec

	// list holds m's entries in no set order (each at its idx), so
	// that the sweep walks them a chunk at a time, releasing mu between
	// chunks, where a map's range cannot be resumed. Under mu; only the
	// sweep removes from it.
	list []*peerState

	sweepMu sync.Mutex // serializes sweepPeers; guards gen
	gen     uint64     // sweep generation
}

func (t *peerTable) init(max int, initRTO int64, maxAge time.Duration, now func() int64) {
	t.m = make(map[netip.AddrPort]*peerState)
	t.home = make(map[uint64]*homeRec)
	t.max = max
	t.initRTO = initRTO
	t.copyFor = 2 * int64(maxAge)
	t.now = now
}

// get returns the peer for addr, creating it if needed: for calls and
// marks this endpoint makes itself.
func (t *peerTable) get(addr netip.AddrPort) *peerState {
	return t.getOrMake(addr, false, t.now())
}

// getAt is get for a caller that has read the engine clock: now.
func (t *peerTable) getAt(addr netip.AddrPort, now int64) *peerState {
	return t.getOrMake(addr, false, now)
}

// learn returns the peer for addr, creating it only if the table has room,
// or nil: for a sender heard in an authenticated, fresh datagram read at
// now (engine clock).
func (t *peerTable) learn(addr netip.AddrPort, now int64) *peerState {
	return t.getOrMake(addr, true, now)
}

// senderKey names the sender of an authenticated request for its home:
// its node id, or, for node id 0 (a client that is not a member), its
// incarnation, kept apart from every node id. Both are under the tag, so
// a replayer without the key changes neither. A client without a node id
// draws its incarnation at random: two share one only by chance, and
// then share a home, where the floor of one may refuse (never run twice)
// a call of the other.
func senderKey(src, inc uint32) uint64 {
	if src != 0 {
		return uint64(src)
	}
	return 1<<32 | uint64(inc)
}

// learnSender is learn for an authenticated request of sender k stamped
// st. The tag does not cover the source address, so a captured request
// sent again from other addresses would make an entry at each, fill the
// table, and leave new senders' non-idempotent calls refused. A request
// from an address the table does not hold makes its entry only if its
// stamp is later than the latest stamp the sender's home heard, which a
// copy of a request heard there is not: only a holder of the key makes
// such a request. A home that last heard longer ago than copyFor tells
// nothing: a copy of what it heard fails the age bound, and its stamp,
// kept while the entry stays (a dead one is never swept), would read as
// later than the sender's own once 2^31 ms passed. The entry a sender is
// first heard at becomes its home (homeOf), whatever the request's call.
func (t *peerTable) learnSender(addr netip.AddrPort, k uint64, st uint32, now int64) *peerState {
	t.mu.RLock()
	p := t.m[addr]
	t.mu.RUnlock()
	if p != nil {
		if p.homed.Load() != k {
			t.homeOf(k, p, now)
			p.homed.Store(k)
		}
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	hr := t.home[k]
	if p = t.m[addr]; p == nil {
		if hr != nil && t.copyMayPass(hr.p, now) && !laterStamp(st, hr.p.stamp.Load()) {
			return nil // a copy of a request the home heard, or older
		}
		if len(t.m) >= t.max {
			return nil
		}
		p = t.makeLocked(addr, now)
	}
	if hr == nil {
		t.setHomeLocked(k, p, now)
	}
	p.homed.Store(k)
	return p
}

// copyMayPass reports whether a copy of a datagram entry h heard may
// still pass the age bound at engine time now. Every stamp h holds was
// heard by h.lastHeard (noteHeard).
func (t *peerTable) copyMayPass(h *peerState, now int64) bool {
	return t.copyFor == 0 || now-h.lastHeard.Load() <= t.copyFor
}

// getOrMake is get (bounded false) and learn (bounded true). get marks
// the entry taken while it holds the table's lock, so a sweep
// (which removes under the write lock) either ran before, and get finds
// or makes the table's entry, or runs after and sees it taken just now:
// a call never parks on an entry the sweep removed. now is the engine
// clock.
func (t *peerTable) getOrMake(addr netip.AddrPort, bounded bool, now int64) *peerState {
	t.mu.RLock()
	p := t.m[addr]
	if p != nil && !bounded {
		p.taken.Store(now)
	}
	t.mu.RUnlock()
	if p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p = t.m[addr]; p != nil {
		if !bounded {
			p.taken.Store(now)
		}
		return p
	}
	if bounded && len(t.m) >= t.max {
		return nil
	}
	return t.makeLocked(addr, now)
}

// makeLocked adds an entry for addr made at engine time now; t.mu is
// held for writing.
func (t *peerTable) makeLocked(addr netip.AddrPort, now int64) *peerState {
	p := &peerState{addr: addr, created: now}
	p.taken.Store(p.created)
	p.mu.rtt.rto = t.initRTO
	t.m[addr] = p
	p.idx = len(t.list)
	t.list = append(t.list, p)
	return p
}

// setHomeLocked makes p, an entry of the table, the home of sender k at
// engine time now, and returns the home; t.mu is held for writing.
func (t *peerTable) setHomeLocked(k uint64, p *peerState, now int64) *homeRec {
	hr := &homeRec{k: k, p: p, made: now}
	t.home[k] = hr
	p.homes = append(p.homes, hr)
	return hr
}

// removeLocked removes entry p from the table, and from the home map
// the senders it is home of; t.mu is held for writing. The last entry
// of list takes p's place.
func (t *peerTable) removeLocked(p *peerState) {
	last := len(t.list) - 1
	q := t.list[last]
	t.list[p.idx] = q
	q.idx = p.idx
	t.list[last] = nil
	t.list = t.list[:last]
	delete(t.m, p.addr)
	for _, hr := range p.homes {
		if t.home[hr.k] == hr {
			delete(t.home, hr.k)
		}
	}
	p.homes = nil
}

// releaseHomesLocked releases the homes that entry p, which the sweep
// keeps, holds for senders that hold nothing at it any more, as the sweep
// removes an idle entry: no request of the sender judged at p can still
// meet its cache entry or floor there (until passed), the home was made
// idle ago or more, and the sender is not the one whose request p's
// address sent last (homed), which a request from p's address would make
// its home again anyway. It returns how many it released. t.mu is held
// for writing, and the duplicate cache's mu (for until and gone).
func (t *peerTable) releaseHomesLocked(p *peerState, now, idle int64) int {
	mark := p.homed.Load()
	n := 0
	for i := 0; i < len(p.homes); {
		hr := p.homes[i]
		if hr.k == mark || now-hr.made < idle || hr.until > now {
			i++
			continue
		}
		hr.gone = true
		if t.home[hr.k] == hr {
			delete(t.home, hr.k)
		}
		last := len(p.homes) - 1
		p.homes[i] = p.homes[last]
		p.homes[last] = nil
		p.homes = p.homes[:last]
		n++
	}
	return n
}

// homeOf returns the entry that judges the authenticated non-idempotent
// requests of sender k (senderKey) for the duplicate cache, and k's home
// there: the one that already does, or else peer, the entry of the
// address the request came from, which becomes k's home at engine time
// now; nil if there is none and peer is nil, and a nil home if peer was
// swept since the reader took it. The tag does not cover the source
// address, so a captured request sent again from another address must
// meet the same cache entries and floors as its original, wherever that
// came from. The home stays until the sweep removes its entry or releases
// it (releaseHomesLocked), which it does only once no floor or cache entry
// of k's is held there: by then every request of k it judged fails the
// age bound.
func (t *peerTable) homeOf(k uint64, peer *peerState, now int64) (*peerState, *homeRec) {
	t.mu.RLock()
	hr := t.home[k]
	t.mu.RUnlock()
	if hr != nil {
		return hr.p, hr
	}
	if peer == nil {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if hr = t.home[k]; hr != nil {
		return hr.p, hr
	}
	if t.m[peer.addr] == peer {
		// Not swept since the reader took it (else begin refuses it).
		hr = t.setHomeLocked(k, peer, now)
	}
	return peer, hr
}

// lookup returns the peer for addr or nil, without creating it.
func (t *peerTable) lookup(addr netip.AddrPort) *peerState {
	t.mu.RLock()
	p := t.m[addr]
	t.mu.RUnlock()
	return p
}

// all returns a snapshot of the tracked peers.
func (t *peerTable) all() []*peerState {
	t.mu.RLock()
	out := make([]*peerState, 0, len(t.m))
	for _, p := range t.m {
		out = append(out, p)
	}
	t.mu.RUnlock()
	return out
}

// size returns the number of tracked peers.
func (t *peerTable) size() int {
	t.mu.RLock()
	n := len(t.m)
	t.mu.RUnlock()
	return n
}

// stampHeard marks peerState.stamp as holding a stamp.
const stampHeard = 1 << 32

// noteStamp records stamp st of a datagram heard from the peer and
// reports whether it is later than every stamp heard from it before
// (modular, as the age bound compares them), or the first. stale says
// the stamp held was heard so long ago that no copy of what it came
// with passes the age bound (copyMayPass false): st, which passed it, is
// later, whatever the modular comparison (wrong past 2^31 ms) says.
func (p *peerState) noteStamp(st uint32, stale bool) bool {
	for {
		old := p.stamp.Load()
		if !stale && !laterStamp(st, old) {
			return false
		}
		if p.stamp.CompareAndSwap(old, stampHeard|uint64(st)) {
			return true
		}
		// Another datagram's stamp came in meanwhile: compare with it.
		stale = false
	}
}

// laterStamp reports whether stamp st is later (modular, as the age
// bound compares them) than the one peerState.stamp value old holds, or
// old holds none.
func laterStamp(st uint32, old uint64) bool {
	return old == 0 || int32(st-uint32(old)) > 0
}

// rto returns the peer's current retransmission timeout.
func (p *peerState) rto() int64 {
	p.mu.Lock()
	v := p.mu.rtt.rto
	p.mu.Unlock()
	return v
}

// sample folds a round-trip sample into the estimator.
func (p *peerState) sample(ns, min, max int64) {
	p.mu.Lock()
	p.mu.rtt = rttUpdate(p.mu.rtt, ns, min, max)
	p.mu.Unlock()
}

// belowFloor reports whether call id of sender instance (src, inc), not
// found in the duplicate cache at engine time now, may have run already:
// it is at or below its instance's floor, or, for an instance whose bits
// are in strict's mask, below what records taken over while still held
// left behind. The latter holds for an instance with a record too:
// entries leave the cache out of call-id order (a running one is passed
// over), so an instance whose record was taken over may make a new one
// with a lower floor than the one folded away.
func (p *peerState) belowFloor(src, inc uint32, id uint64, now int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.mu.strict
	if b := instBits(src, inc); now < s.hold && id <= s.floor && s.mask&b == b {
		return true
	}
	for i := range p.mu.floors {
		if f := &p.mu.floors[i]; f.hold != 0 && f.src == src && f.inc == inc {
			return id <= f.floor
		}
	}
	return false
}

// raiseFloor records that call id of sender instance (src, inc) left the
// duplicate cache, and that a copy of it may arrive until hold. A record
// whose hold has passed is reused; when every record is held, the one
// held the shortest is taken over and its floor, hold and instance fold
// into strict, so no call of any instance that lost its record runs
// again. A strict whose hold has passed proves nothing and starts anew.
func (p *peerState) raiseFloor(src, inc uint32, id uint64, hold, now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var f *dupFloor
	for i := range p.mu.floors {
		if r := &p.mu.floors[i]; r.hold != 0 && r.src == src && r.inc == inc {
			f = r
			break
		}
	}
	if f == nil {
		for i := range p.mu.floors {
			r := &p.mu.floors[i]
			if f == nil || r.hold < f.hold {
				f = r
			}
		}
		if f.hold > now {
			s := &p.mu.strict
			if s.hold <= now {
				*s = dupFloor{}
			}
			if f.floor > s.floor {
				s.floor = f.floor
			}
			if f.hold > s.hold {
				s.hold = f.hold
			}
			s.mask |= instBits(f.src, f.inc)
		}
		*f = dupFloor{src: src, inc: inc}
	}
	if id > f.floor {
		f.floor = id
	}
	if hold > f.hold {
		f.hold = hold
	}
}

// floorsHeld reports whether any floor of the peer may still refuse a
// copy at engine time now.
func (p *peerState) floorsHeld(now int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.strict.hold > now {
		return true
	}
	for i := range p.mu.floors {
		if p.mu.floors[i].hold > now {
			return true
		}
	}
	return false
}

// PeerInfo is a snapshot of one peer for the Peers API.
type PeerInfo struct {
	Addr        netip.AddrPort
	Node        uint32
	Incarnation uint32
	State       PeerState
	LastHeardNs int64 // engine clock (Endpoint.Now), 0 = never
	SRTTNs      int64
	RTONs       int64
	Misses      int
}

func (p *peerState) info() PeerInfo {
	p.mu.Lock()
	rtt := p.mu.rtt
	p.mu.Unlock()
	return PeerInfo{
		Addr: p.addr, Node: p.node.Load(), Incarnation: p.incarn.Load(),
		State: PeerState(p.state.Load()), LastHeardNs: p.lastHeard.Load(),
		SRTTNs: rtt.srtt, RTONs: rtt.rto, Misses: int(p.misses.Load()),
	}
}

// sweepPeers removes idle peers from the table; the timer goroutine runs
// it every sweepEvery. A peer is idle, and removed, when all of these hold:
//
//   - it is not declared dead (a dead mark is kept until MarkAlive or a
//     sign of life, so calls to it keep failing at once);
//   - no call is parked on it;
//   - it has not been heard, nor made, nor taken by get (a call, a
//     mark, a send), for DupAge;
//   - no duplicate-cache entry names it, and none of its floors is held
//     (peerState.floorsHeld): a copy of any request it sent that left
//     the cache can no longer arrive, since its caller's deadline, the
//     retransmission timeout and twice the age bound have passed.
//
// So removing a peer forgets nothing that could refuse a copy: a request
// that arrives from its address later is new, and is judged against a
// fresh entry. A peer that is the home of senders (homeOf) stops being
// it: their floors are all its own, and none is held. A reader that took
// the peer before it was removed finds it gone in dupCache.begin and
// answers EBUSY.
//
// A peer that is kept (an address that stays busy) releases, by the same
// rule for each sender alone, the homes of senders that hold nothing at
// it any more (releaseHomesLocked), counted homes-released: so the home
// map holds the senders of the last hold window, not every sender an
// address ever sent for (client incarnations come and go at one address).
// A reader that took a home before it was released finds it gone in
// dupCache.begin and answers EBUSY.
//
// The walk holds the table's lock and the duplicate cache's for at most
// sweepChunk entries at once, and releases them between chunks, so that
// the reader goroutine waits at most that long even at a full table
// (BenchmarkSweepPeers, TestSweepLetsReaderIn). Each entry is judged
// under the locks, against its fields as they are then, as a walk under
// one hold judges it.
func (ep *Endpoint) sweepPeers(now int64) {
	t := &ep.peers
	t.sweepMu.Lock()
	defer t.sweepMu.Unlock()
	t.gen++
	gen := t.gen
	for i := range ep.pending.slots {
		p := &ep.pending.slots[i]
		p.mu.Lock()
		if p.mu.state == slotWaiting && p.mu.peer != nil {
			p.mu.peer.calling.Store(gen)
		}
		p.mu.Unlock()
	}
	idle := int64(ep.cfg.DupAge)
	swept := false
	released := 0 // homes of kept entries released
	// Each chunk of the walk holds the table's lock and the duplicate
	// cache's (which the reader takes for every datagram, and every
	// non-idempotent request) for at most sweepChunk entries, so a full
	// table stalls the reader no longer than that at once. The walk runs
	// down list: an entry removed takes the place of the last one, which
	// was judged already or was made during the sweep (and so is not
	// idle); entries made meanwhile go past the end.
	t.mu.RLock()
	i := len(t.list) - 1
	t.mu.RUnlock()
	for i >= 0 {
		t.mu.Lock()
		ep.dup.mu.Lock()
		for end := i - sweepChunk; i >= 0 && i > end; i-- {
			p := t.list[i]
			if PeerState(p.state.Load()) == PeerDead || p.calling.Load() == gen || p.dupRefs != 0 ||
				now-max(p.lastHeard.Load(), p.created, p.taken.Load()) < idle || p.floorsHeld(now) {
				if len(p.homes) != 0 {
					released += t.releaseHomesLocked(p, now, idle)
				}
				continue
			}
			p.gone = true
			t.removeLocked(p)
			ep.stats.peersSwept.Add(1)
			swept = true
		}
		ep.dup.mu.Unlock()
		t.mu.Unlock()
		// Let a goroutine woken by the unlocks take the locks before
		// the next chunk does.
		runtime.Gosched()
	}
	if released != 0 {
		ep.stats.homesReleased.Add(uint64(released))
	}
	if !swept && released == 0 {
		return
	}
	// A second pass over the table, needed: whether a kept peer's sender
	// lost its home is known only once every entry was judged, and the
	// walk above visits them in no set order, so a home may go after the
	// peer that names it was kept. A mark that outlived its home would
	// spare the sender the look at the home map (learnSender) until a
	// later sweep, and meanwhile copies of its requests replayed from
	// other addresses would make entries there
	// (TestHomesMadeAgainAfterOneSweep). Judging the home early, out of
	// order, would judge it twice against fields callers change meanwhile
	// (state, lastHeard), or need a per-sweep mark in each entry and a
	// home lookup per kept peer on every sweep; this pass runs only on a
	// sweep that removed an entry or released a home, in chunks as the
	// first. A home made
	// between chunks is in the map before its mark is set (learnSender,
	// homeOf), so no mark of a live home is cleared.
	t.mu.RLock()
	i = len(t.list) - 1
	t.mu.RUnlock()
	for i >= 0 {
		t.mu.RLock()
		for end := i - sweepChunk; i >= 0 && i > end; i-- {
			p := t.list[i]
			if k := p.homed.Load(); k != 0 && t.home[k] == nil {
				// The next request of sender k makes sure of a
				// home again (learnSender).
				p.homed.Store(0)
			}
		}
		t.mu.RUnlock()
		runtime.Gosched()
	}
}

// sweepEvery returns how often the timer goroutine sweeps the peer table:
// a quarter of DupAge, within [sweepMin, sweepMax].
func (ep *Endpoint) sweepEvery() int64 {
	d := int64(ep.cfg.DupAge) / 4
	return min(max(d, int64(sweepMin)), int64(sweepMax))
}

const (
	sweepMin = 10 * time.Millisecond
	sweepMax = 10 * time.Second
	// sweepChunk is how many entries the sweep judges under one hold
	// of the table's lock.
	sweepChunk = 256
)

// dst returns the destination node id of a datagram to the peer: its
// node id, or 0 while a request from its address named another one.
func (p *peerState) dst() uint32 {
	if p.otherID.Load() {
		return 0
	}
	return p.node.Load()
}
