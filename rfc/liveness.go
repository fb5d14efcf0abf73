package rfc

import (
	"net/netip"

	"fastcall/wire"
)

// heard records a sign of life from a peer: any valid datagram counts.
// A suspect or dead peer that is heard becomes alive again.
func (ep *Endpoint) heard(peer *peerState, p *wire.Packet, now int64) {
	peer.lastHeard.Store(now)
	if peer == &ep.peers.overflow {
		return
	}
	if peer.node.Load() != p.Src {
		peer.node.Store(p.Src)
	}
	if peer.incarn.Load() != p.Incarnation {
		peer.incarn.Store(p.Incarnation)
	}
	if peer.misses.Load() != 0 {
		peer.misses.Store(0)
	}
	if st := PeerState(peer.state.Load()); st != PeerAlive {
		if peer.state.CompareAndSwap(uint32(st), uint32(PeerAlive)) {
			ep.notify(peer)
		}
	}
}

// peerMissed counts a call to peer that timed out; after SuspectAfter in a
// row the peer becomes suspect.
func (ep *Endpoint) peerMissed(peer *peerState) {
	if peer == nil || peer == &ep.peers.overflow {
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
// again (any valid datagram from it) or MarkAlive is called. The heartbeat
// service drives this. It returns the number of calls failed.
func (ep *Endpoint) MarkDead(addr netip.AddrPort) int {
	peer := ep.peers.get(addr)
	if peer == &ep.peers.overflow {
		return 0
	}
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
	peer := ep.peers.get(addr)
	if peer != &ep.peers.overflow && peer.state.CompareAndSwap(uint32(PeerAlive), uint32(PeerSuspect)) {
		ep.stats.peerSuspects.Add(1)
		ep.notify(peer)
	}
}

// MarkAlive clears a dead or suspect mark.
func (ep *Endpoint) MarkAlive(addr netip.AddrPort) {
	peer := ep.peers.get(addr)
	if peer == &ep.peers.overflow {
		return
	}
	peer.misses.Store(0)
	if old := PeerState(peer.state.Swap(uint32(PeerAlive))); old != PeerAlive {
		ep.notify(peer)
	}
}

// Peer returns what the engine knows of the peer at addr.
func (ep *Endpoint) Peer(addr netip.AddrPort) (PeerInfo, bool) {
	p := ep.peers.lookup(addr)
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
