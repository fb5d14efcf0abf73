package rfc

import (
	"net/netip"

	"fastcall/wire"
)

// heard records a request from a peer. The signs of life are a request
// that passed the tag and the age bound, whose stamp is later than every
// stamp heard from the peer before and whose source node id is the
// peer's (or the peer's is not known yet, 0), and a reply matched to a call
// parked on the peer (deliver); a reply that matches no call is not one,
// nor is a copy of a request heard before (a capture replayed within the
// age bound: requests that take no duplicate cache entry reach the
// handler again, but they do not keep a crashed peer alive). A suspect
// peer that is heard becomes alive again; a dead one only if the
// datagram's stamp is later than every stamp heard from the peer before,
// so that a copy of what it sent before it was declared dead, replayed
// within the age bound, does not revive it. Once every stamp the entry
// holds was heard longer ago than a copy may pass the age bound
// (copyMayPass), any stamp is later (noteStamp).
func (ep *Endpoint) heard(peer *peerState, p *wire.Packet, now int64) {
	if ep.noteHeard(peer, p, now, true) {
		ep.notify(peer)
	}
}

// noteHeard is heard without telling the listeners: it reports whether
// the peer became alive, for the caller to call notify once it holds no
// lock. For a request (request set) whose stamp is not later than every
// stamp heard from the peer it records nothing.
func (ep *Endpoint) noteHeard(peer *peerState, p *wire.Packet, now int64, request bool) bool {
	if known := peer.node.Load(); request && known != 0 && p.Src != known {
		// Another node's request from this address: the tag does not
		// cover the source address, so this may be another member's
		// datagram, captured and sent from a crashed peer's address to
		// keep it alive. It records nothing (not even its stamp, which
		// would hold back the peer's own); only a reply to a call of
		// this endpoint, which names its call id, teaches a new id.
		peer.otherID.Store(true)
		return false
	}
	later := peer.noteStamp(p.Stamp, !ep.peers.copyMayPass(peer, now))
	if request && !later {
		return false
	}
	peer.lastHeard.Store(now)
	if peer.node.Load() != p.Src {
		peer.node.Store(p.Src)
	}
	if peer.otherID.Load() && !request {
		peer.otherID.Store(false)
	}
	if peer.incarn.Load() != p.Incarnation {
		peer.incarn.Store(p.Incarnation)
	}
	if peer.misses.Load() != 0 {
		peer.misses.Store(0)
	}
	if st := PeerState(peer.state.Load()); st != PeerAlive && (st != PeerDead || later) {
		return peer.state.CompareAndSwap(uint32(st), uint32(PeerAlive))
	}
	return false
}

// peerMissed counts a call to peer that timed out; after SuspectAfter in a
// row the peer becomes suspect.
func (ep *Endpoint) peerMissed(peer *peerState) {
	if peer == nil {
		return
	}
	if int(peer.misses.Add(1)) >= ep.cfg.SuspectAfter {
		if peer.state.CompareAndSwap(uint32(PeerAlive), uint32(PeerSuspect)) {
			ep.stats.peerSuspects.Add(1)
			ep.notify(peer)
		}
	}
}

// MarkDead declares the peer at addr dead: every call parked on it fails
// with ENODEAD at once, and new calls to it fail at once until it is heard
// again (a fresh request from it, or a reply to a call made with Probe)
// or MarkAlive is called. The heartbeat service drives this. It returns
// the number of calls failed.
func (ep *Endpoint) MarkDead(addr netip.AddrPort) int {
	peer := ep.peers.get(peerAddr(addr))
	if old := PeerState(peer.state.Swap(uint32(PeerDead))); old != PeerDead {
		ep.stats.peerDeaths.Add(1)
		ep.log.Info("peer declared dead", "peer", addr.String(), "node", peer.node.Load())
		ep.notify(peer)
	}
	failed := 0
	for i := range ep.pending.slots {
		p := &ep.pending.slots[i]
		p.mu.Lock()
		if p.mu.state != slotWaiting || p.mu.peer != peer {
			p.mu.Unlock()
			continue
		}
		fn := p.completeLocked(wire.ENODEAD)
		ep.stats.callOut(p.mu.callNo).errs.add(wire.ENODEAD)
		failed++
		p.mu.Unlock()
		p.finish(fn)
	}
	return failed
}

// MarkSuspect marks the peer suspect (calls still go out).
func (ep *Endpoint) MarkSuspect(addr netip.AddrPort) {
	peer := ep.peers.get(peerAddr(addr))
	if peer.state.CompareAndSwap(uint32(PeerAlive), uint32(PeerSuspect)) {
		ep.stats.peerSuspects.Add(1)
		ep.notify(peer)
	}
}

// MarkAlive clears a dead or suspect mark.
func (ep *Endpoint) MarkAlive(addr netip.AddrPort) {
	peer := ep.peers.get(peerAddr(addr))
	peer.misses.Store(0)
	if old := PeerState(peer.state.Swap(uint32(PeerAlive))); old != PeerAlive {
		ep.notify(peer)
	}
}

// Peer returns what the engine knows of the peer at addr.
func (ep *Endpoint) Peer(addr netip.AddrPort) (PeerInfo, bool) {
	p := ep.peers.lookup(peerAddr(addr))
	if p == nil {
		return PeerInfo{Addr: addr}, false
	}
	return p.info(), true
}

// Peers returns a snapshot of every tracked peer.
func (ep *Endpoint) Peers() []PeerInfo {
	ps := ep.peers.all()
	out := make([]PeerInfo, len(ps))
	for i, p := range ps {
		out[i] = p.info()
	}
	return out
}

// OnPeerChange adds a listener called after a peer changes state (alive,
// suspect, dead). Listeners run on the goroutine that saw the change (a
// reader, the timer goroutine, or the caller of MarkDead) and must return
// quickly; they must not call MarkDead, MarkSuspect or MarkAlive.
func (ep *Endpoint) OnPeerChange(f func(PeerInfo)) {
	for {
		old := ep.onPeer.Load()
		var fs []func(PeerInfo)
		if old != nil {
			fs = append(fs, *old...)
		}
		fs = append(fs, f)
		if ep.onPeer.CompareAndSwap(old, &fs) {
			return
		}
	}
}

func (ep *Endpoint) notify(peer *peerState) {
	fs := ep.onPeer.Load()
	if fs == nil {
		return
	}
	info := peer.info()
	for _, f := range *fs {
		f(info)
	}
}
