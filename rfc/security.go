package rfc

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/wire"
)

// Defences against hostile networks (docs/PROTOCOL.md, "Security"):
//
//   - keys: with a cluster key every datagram is authenticated and anything
//     else is dropped without a reply; SetKeys rotates keys at run time,
//     accepting the previous key during the rotation window;
//   - age: a datagram, request or reply, whose stamp is older than
//     Config.MaxAge (or further in the future) is dropped, so a captured
//     datagram replayed later is neither executed nor taken as a sign of
//     life; within that bound the duplicate cache answers replays of
//     non-idempotent calls from the cache and its floors refuse older
//     ones, so nothing runs twice, and a reply counts only for the call
//     it answers; the tag does not cover the source address, so a
//     sender's requests are judged at its home entry from any address,
//     a sender without node id by its incarnation (peerTable.homeOf);
//   - amplification: a reply to a request that is not authenticated is at
//     most AmplifyFactor times the request's size, and a cached reply goes
//     only to a copy of its request from the address that request came
//     from (a copy from elsewhere, which would reflect the reply at that
//     address, is dropped: dup-addr);
//   - error replies to unauthenticated requests are rate limited;
//   - reflection: a request of this endpoint's own that names no
//     destination node, brought back to it, is dropped (reflected).

// AmplifyFactor bounds a reply to an unauthenticated request, as a
// multiple of the request's size.
const AmplifyFactor = 3

// keySet is the endpoint's current keys; gen changes on every SetKeys.
type keySet struct {
	key, prev []byte
	gen       uint64
}

// codecRef is a goroutine's own codec and the key generation it holds.
type codecRef struct {
	c   *wire.Codec
	gen uint64
}

// codec returns r's codec, re-keyed first if the endpoint's keys changed.
func (ep *Endpoint) codecOf(r *codecRef) *wire.Codec {
	ks := ep.keys.Load()
	if r.c == nil {
		r.c = ep.codec.Clone()
		r.gen = 0
	}
	if r.gen != ks.gen {
		if len(ks.key) > 0 {
			_ = r.c.SetKeys(ks.key, ks.prev)
		}
		r.gen = ks.gen
	}
	return r.c
}

// SetKeys rotates the cluster key without downtime: key becomes the key
// every datagram is sent with, and prev (may be nil) stays accepted on
// receive. Rotate a cluster in two steps: first give every node
// (new, old), then, once all have it, (new, nil). An endpoint started in
// checksum mode cannot switch to authenticated mode (EINVAL), nor back.
func (ep *Endpoint) SetKeys(key, prev []byte) error {
	if !ep.codec.Authenticated() || len(key) < wire.MinKeyLen || (len(prev) > 0 && len(prev) < wire.MinKeyLen) {
		return wire.EINVAL
	}
	ep.keyMu.Lock()
	defer ep.keyMu.Unlock()
	old := ep.keys.Load()
	ep.keys.Store(&keySet{key: append([]byte(nil), key...), prev: append([]byte(nil), prev...), gen: old.gen + 1})
	ep.log.Info("cluster keys rotated", "previous-accepted", len(prev) > 0)
	return nil
}

// reflected reports whether the request p from address from, which names
// no destination node id (the sender had not learnt the callee's), is
// one this endpoint sent, brought back to it: it comes from this
// endpoint's own address or carries its node id (not 0), and it is not a
// call of this endpoint in flight to that address (a call to itself).
// Its tag is valid, since this endpoint made it, and any endpoint
// accepts destination 0; without this check an attacker on the path
// could make a node run the idempotent calls it sends to others.
func (ep *Endpoint) reflected(p *wire.Packet, from netip.AddrPort) bool {
	if p.Flags&wire.FlagRequest == 0 || from != ep.local && (ep.id == 0 || p.Src != ep.id) {
		return false
	}
	pd := ep.pending.byID(p.CallID)
	if pd == nil {
		return true
	}
	pd.mu.Lock()
	ours := pd.mu.state == slotWaiting && pd.mu.callID == p.CallID && pd.mu.dst == from
	pd.mu.Unlock()
	return !ours
}

// tooOld reports whether a datagram's stamp is outside the age bound,
// by this endpoint's stamp at, the time it was read.
func (ep *Endpoint) tooOld(stamp, at uint32) bool {
	if ep.cfg.MaxAge <= 0 {
		return false
	}
	age := int64(int32(at - stamp)) // modular difference, ms
	max := ep.cfg.MaxAge.Milliseconds()
	return age > max || age < -max
}

// errLimiter is a token bucket for error replies to unauthenticated
// requests, shared by the readers.
type errLimiter struct {
	mu     sync.Mutex
	tokens float64
	last   int64
	rate   float64
	burst  float64
	denied atomic.Uint64
}

func (l *errLimiter) init(rate int) {
	l.rate = float64(rate)
	l.burst = float64(rate)
	l.tokens = l.burst
}

// allow takes a token at engine time now.
func (l *errLimiter) allow(now int64) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens += float64(now-l.last) / float64(time.Second) * l.rate
	l.last = now
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	if l.tokens < 1 {
		l.denied.Add(1)
		return false
	}
	l.tokens--
	return true
}
