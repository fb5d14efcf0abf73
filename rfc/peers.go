package rfc

import (
	"net/netip"
	"sync"
	"sync/atomic"
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
// round-trip estimator and the duplicate-cache floor; the rest are atomic.
type peerState struct {
	addr      netip.AddrPort
	lastHeard atomic.Int64 // engine clock, ns; 0 = never
	state     atomic.Uint32
	misses    atomic.Int32 // consecutive timed-out calls
	node      atomic.Uint32
	incarn    atomic.Uint32

	mu struct {
		sync.Mutex
		rtt rttState
		// floor is the highest call id evicted from the duplicate
		// cache for incarnation floorInc: a request at or below it that
		// is not in the cache may have run already, and is refused.
		floorInc uint32
		floor    uint64
	}
}

// peerTable maps addresses to peers. Lookups take the read lock; a new
// peer takes the write lock once.
type peerTable struct {
	mu       sync.RWMutex
	m        map[netip.AddrPort]*peerState
	max      int
	overflow peerState // shared by peers past the bound; never changes state
	initRTO  int64
}

func (t *peerTable) init(max int, initRTO int64) {
	t.m = make(map[netip.AddrPort]*peerState)
	t.max = max
	t.initRTO = initRTO
	t.overflow.mu.rtt.rto = initRTO
}

// get returns the peer for addr, creating it if the table has room.
func (t *peerTable) get(addr netip.AddrPort) *peerState {
	t.mu.RLock()
	p := t.m[addr]
	t.mu.RUnlock()
	if p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p = t.m[addr]; p != nil {
		return p
	}
	if len(t.m) >= t.max {
		return &t.overflow
	}
	p = &peerState{addr: addr}
	p.mu.rtt.rto = t.initRTO
	t.m[addr] = p
	return p
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

// dupFloor returns the floor for incarnation inc (0 if another
// incarnation is tracked).
func (p *peerState) dupFloor(inc uint32) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.floorInc != inc {
		return 0
	}
	return p.mu.floor
}

// raiseFloor records that call id id of incarnation inc left the cache.
func (p *peerState) raiseFloor(inc uint32, id uint64) {
	p.mu.Lock()
	if p.mu.floorInc != inc {
		p.mu.floorInc, p.mu.floor = inc, 0
	}
	if id > p.mu.floor {
		p.mu.floor = id
	}
	p.mu.Unlock()
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
