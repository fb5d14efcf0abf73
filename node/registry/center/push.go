package center

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"

	"fastcall/node/registry"
	"fastcall/rfc"
	"fastcall/wire"
)

// Push streams (docs/REGISTRY.md, "Subscriptions and pushes"). A
// subscriber opens a stream with an id of its choice and adds prefixes to
// it. Every change the center applies under one of the prefixes is queued
// on the stream with the stream's next sequence number. The queue's head
// goes out as one batch (as many changes as fit one datagram) in an
// asynchronous call; only its acknowledgement drops the batch from the
// queue, and a push that fails is retried with the same sequence numbers,
// so a change is never lost silently: either it is acknowledged, or the
// stream is broken and the subscriber, seeing the gap, resynchronizes.
//
// Who sends: the goroutine that applied the change, right after it
// releases the center's mutex (sendDue), when the stream is idle; the
// goroutine that completes a push (pushDone), when changes queued while
// it was in flight; a pusher goroutine, for retries. One batch per
// stream is in flight at a time.
//
// Bounds (docs/REGISTRY.md, "Bounds"): a stream lives while its
// subscriber renews it (registry.CallSubCheck, registry.CallSubscribe, an acknowledged
// push) at least once per Config.StreamIdle; the maintenance loop drops
// the others. Streams are bounded per subscriber address, per source IP
// address and in all; a refusal is counted and logged, at most once per
// StreamIdle; with the table full (MaxStreams), a new stream takes the
// place of the oldest one never proven (see below). Pushes go only to the
// address the subscription came from.
//
// Return routability: a subscription proves nothing about its source
// address (in checksum mode anyone can write it; in keyed mode a captured
// request can be replayed from another one), and pushes with their
// retransmissions and retries would send that address far more than it
// sent. So a new stream is unproven: the subscribe reply carries the
// stream's cookie, a random number only a reader at the address sees,
// and the stream queues changes but pushes nothing, and is renewed by
// nothing, until its subscriber echoes the cookie in a
// registry.CallSubCheck. Until then the center sends the address only
// replies, which the engine's reply budget bounds.

// change is one queued change: a key and its new record (a tombstone for
// a deletion).
type change struct {
	key string
	rec []byte
}

// stream is one subscriber's push stream. Fields below addr are guarded
// by pushTable.mu.
type stream struct {
	id     uint64
	addr   netip.AddrPort
	cookie uint64 // echoed by the subscriber's CallSubCheck: proves it reads at addr
	at     int    // index in pushTable.list

	prefixes []string
	queue    []change // changes not yet acknowledged, sequence numbers nextSeq...
	nextSeq  uint64   // sequence number of queue[0]
	lastSeq  uint64   // last sequence number assigned
	broken   bool     // the queue overflowed: push a gap
	queued   bool     // handed to a sender: in pushTable.due or Center.pushWake
	inflight bool     // a batch is in flight
	retryAt  int64    // engine clock of the next attempt after a failure; 0: none
	heard    int64    // engine clock of the last renewal (subscribe, subcheck, acknowledged push)
	fails    int      // failed pushes in a row
	dropped  bool
	proven   bool   // the subscriber echoed the cookie: pushes may go out
	seg      []byte // request parameters of the batch in flight; made on first push
	batch    []byte // the batch in flight
}

// pushTable holds the streams of a center.
type pushTable struct {
	mu      sync.Mutex
	streams map[uint64]*stream
	// list holds the streams of streams in a fixed order (a new stream at
	// the end, a dropped one replaced by the last): notify and the
	// maintenance loop walk it, so pushes go out in an order the
	// sequence of subscriptions decides, not the map's random one, and a
	// simulated run replays.
	list   []*stream
	byAddr map[netip.AddrPort][]*stream
	byIP   map[netip.Addr]int // streams per source IP address (unmapped)
	due    []*stream          // woken by notify, to be sent by the applier (sendDue); each at most once
	// Refused subscriptions since the last log line, and the engine
	// clock of that line (0: none yet).
	refused   uint64
	refusedAt int64
}

func (t *pushTable) init() {
	t.streams = make(map[uint64]*stream)
	t.byAddr = make(map[netip.AddrPort][]*stream)
	t.byIP = make(map[netip.Addr]int)
}

func (t *pushTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.streams)
}

// dropLocked removes a stream; t.mu is held.
func (t *pushTable) dropLocked(s *stream) {
	if s.dropped {
		return
	}
	s.dropped = true
	s.queue = nil
	delete(t.streams, s.id)
	last := t.list[len(t.list)-1]
	t.list[s.at] = last
	last.at = s.at
	t.list[len(t.list)-1] = nil
	t.list = t.list[:len(t.list)-1]
	list := t.byAddr[s.addr]
	for i, x := range list {
		if x == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(t.byAddr, s.addr)
	} else {
		t.byAddr[s.addr] = list
	}
	ip := s.addr.Addr().Unmap()
	if t.byIP[ip] <= 1 {
		delete(t.byIP, ip)
	} else {
		t.byIP[ip]--
	}
}

// dropAddr removes every stream of a subscriber address and returns how
// many there were.
func (t *pushTable) dropAddr(addr netip.AddrPort) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropAddrLocked(addr)
}

// dropAddrLocked is dropAddr with t.mu held.
func (t *pushTable) dropAddrLocked(addr netip.AddrPort) int {
	list := append([]*stream(nil), t.byAddr[addr]...)
	for _, s := range list {
		t.dropLocked(s)
	}
	return len(list)
}

// notify queues a change on every stream subscribed to a prefix of key.
// The center's mutex is held, so changes are queued in apply order.
func (t *pushTable) notify(c *Center, key string, rec []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.list {
		match := false
		for _, p := range s.prefixes {
			if strings.HasPrefix(key, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		s.lastSeq++
		if len(s.queue) >= c.cfg.StreamQueue {
			// The subscriber does not keep up: drop the queue and make
			// the next push show the gap.
			s.queue = nil
			s.nextSeq = s.lastSeq + 1
			s.broken = true
			c.stats.streamsOverflowed.Add(1)
		} else {
			s.queue = append(s.queue, change{key: key, rec: rec})
		}
		if s.proven && !s.queued && !s.inflight && s.retryAt == 0 && !s.dropped {
			s.queued = true
			t.due = append(t.due, s)
		}
	}
}

// sendDue sends the streams that notify woke, on the caller's goroutine:
// the goroutine that applied a change pushes it, with no hand-off. Every
// caller of applyLocked calls it once it has released the center's mutex.
func (c *Center) sendDue() {
	t := &c.push
	t.mu.Lock()
	due := t.due
	t.due = nil
	t.mu.Unlock()
	for _, s := range due {
		c.startPush(s)
	}
}

// wakeLocked hands s to a pusher unless it is queued, in flight or
// waiting for a retry; t.mu is held. The hand-off cannot block: the
// channel holds Config.MaxStreams streams and a stream is in it at most
// once.
func (c *Center) wakeLocked(s *stream) {
	if !s.proven || s.queued || s.inflight || s.retryAt != 0 || s.dropped {
		return
	}
	select {
	case c.pushWake <- s:
		s.queued = true
	default:
		s.retryAt = c.ep.Now()
	}
}

// retryStreams wakes the streams whose retry time has come and drops
// those not renewed within StreamIdle (maintenance loop).
func (c *Center) retryStreams(now int64) {
	t := &c.push
	t.mu.Lock()
	defer t.mu.Unlock()
	idle := int64(c.cfg.StreamIdle)
	for i := 0; i < len(t.list); {
		s := t.list[i]
		if now-s.heard > idle {
			t.dropLocked(s) // moves the last stream to i
			c.stats.streamsExpired.Add(1)
			continue
		}
		i++
		if s.retryAt != 0 && now >= s.retryAt {
			s.retryAt = 0
			if len(s.queue) > 0 || s.broken {
				c.wakeLocked(s)
			}
		}
	}
}

// pushLoop is a pusher goroutine: it sends the streams handed to it
// (retries, and wakes that found the hand-off to the applier closed).
func (c *Center) pushLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case s := <-c.pushWake:
			c.startPush(s)
		}
	}
}

// startPush sends the head of s's queue as one asynchronous call, unless
// the stream has nothing to send, is unproven, is dropped or has a batch
// in flight.
// pushDone handles the outcome.
func (c *Center) startPush(s *stream) {
	t := &c.push
	t.mu.Lock()
	s.queued = false
	if s.dropped || !s.proven || s.inflight || (len(s.queue) == 0 && !s.broken) {
		t.mu.Unlock()
		return
	}
	if s.seg == nil {
		maxDg := c.ep.Config().MaxDatagram
		s.seg = make([]byte, maxDg-wire.HeaderSize)
		s.batch = make([]byte, 0, maxDg)
	}
	room := len(s.seg) - 3*registry.ParamU64Size - wire.ParamHdrSize
	batch := s.batch[:0]
	n := 0
	for _, ch := range s.queue {
		need := registry.ChangeHdrSize + len(ch.key) + len(ch.rec)
		if len(batch)+need > room {
			break
		}
		batch = binary.BigEndian.AppendUint16(batch, uint16(len(ch.key)))
		batch = append(batch, ch.key...)
		batch = binary.BigEndian.AppendUint16(batch, uint16(len(ch.rec)))
		batch = append(batch, ch.rec...)
		n++
	}
	s.batch = batch
	first, addr := s.nextSeq, s.addr
	var ps wire.Params
	ps.Reset(s.seg)
	ps.Uint64(s.id)
	ps.Uint64(first)
	ps.Uint64(uint64(n))
	ps.Bytes(batch)
	s.inflight = true
	t.mu.Unlock()

	// The engine copies the request: s.seg is free again when GoFunc
	// returns, and s stays in flight until pushDone.
	err := c.ep.GoFunc(addr, registry.CallPush, &ps, c.cfg.PushTimeout, func(p *rfc.Pending) {
		c.pushDone(s, first, n, wire.AsErrno(p.Err()))
	})
	if err != nil {
		c.pushDone(s, first, n, wire.AsErrno(err))
	}
}

// pushDone handles the outcome of the push of n changes from first on s;
// it runs on the goroutine that completed the call and never blocks. What
// queued meanwhile goes out at once.
func (c *Center) pushDone(s *stream, first uint64, n int, e wire.Errno) {
	t := &c.push
	t.mu.Lock()
	s.inflight = false
	if s.dropped {
		t.mu.Unlock()
		return
	}
	next := false
	switch e {
	case wire.OK:
		c.stats.pushes.Add(1)
		s.fails = 0
		s.heard = c.ep.Now()
		if s.broken && n == 0 {
			s.broken = false
		}
		if s.nextSeq == first { // the queue was not reset meanwhile
			rest := copy(s.queue, s.queue[n:])
			clear(s.queue[rest:])
			s.queue = s.queue[:rest]
			s.nextSeq += uint64(n)
		}
		if (len(s.queue) > 0 || s.broken) && !s.queued {
			s.queued = true
			next = true
		}
	case wire.ESTALE, wire.EAGAIN, wire.EINVAL, wire.EPROTO, wire.ENOCALL:
		// The subscriber does not know the stream, is resynchronizing
		// on a new one, or cannot take it: drop it.
		c.stats.pushDropped.Add(1)
		t.dropLocked(s)
	case wire.ENODEAD:
		c.stats.pushDropped.Add(1)
		t.dropAddrLocked(s.addr)
	default:
		c.stats.pushFailures.Add(1)
		s.fails++
		if s.fails >= c.cfg.MaxPushFailures {
			c.stats.pushDropped.Add(1)
			t.dropLocked(s)
			break
		}
		s.retryAt = c.ep.Now() + int64(c.cfg.PushRetry)
	}
	t.mu.Unlock()
	if next {
		c.startPush(s)
	}
}

// serveSubscribe adds a prefix to a stream, opening it (unproven, with a
// new cookie) if new, and answers the stream's cookie. The stream belongs
// to the request's source address: pushes go there and nowhere else, and
// only that address may renew, extend or close it. A subscription renews
// only a proven stream, so that spoofed ones expire after StreamIdle.
func (c *Center) serveSubscribe(req *rfc.Request, reply *wire.Params) wire.Errno {
	id, prefix := req.Param(0).Uint64(), req.Param(1).Str()
	if id == 0 || len(prefix) > registry.MaxKeyLen {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	if c.closed() {
		return wire.ECLOSED
	}
	now := c.ep.Now()
	t := &c.push
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streams[id]
	if s != nil && s.addr != req.From {
		return wire.EINVAL
	}
	if s != nil {
		if s.proven {
			s.heard = now
		}
		for _, p := range s.prefixes {
			if p == prefix {
				reply.Uint64(s.lastSeq + 1)
				reply.Uint64(s.cookie)
				return wire.OK
			}
		}
	}
	nPrefixes := 0
	for _, x := range t.byAddr[req.From] {
		nPrefixes += len(x.prefixes)
	}
	if nPrefixes >= c.cfg.MaxPrefixesPerNode {
		return c.refuseLocked(req.From, "prefixes per address", now)
	}
	if s == nil {
		ip := req.From.Addr().Unmap()
		switch {
		case len(t.byAddr[req.From]) >= c.cfg.MaxStreamsPerNode:
			return c.refuseLocked(req.From, "streams per address", now)
		case t.byIP[ip] >= c.cfg.MaxStreamsPerIP:
			return c.refuseLocked(req.From, "streams per IP address", now)
		case len(t.streams) >= c.cfg.MaxStreams && !t.evictUnprovenLocked():
			return c.refuseLocked(req.From, "streams in all", now)
		}
		s = &stream{id: id, addr: req.From, cookie: c.cfg.IDs(), nextSeq: 1, heard: now}
		t.streams[id] = s
		s.at = len(t.list)
		t.list = append(t.list, s)
		t.byAddr[req.From] = append(t.byAddr[req.From], s)
		t.byIP[ip]++
	}
	s.prefixes = append(s.prefixes, prefix)
	reply.Uint64(s.lastSeq + 1)
	reply.Uint64(s.cookie)
	return wire.OK
}

// evictUnprovenLocked drops the stream opened first among those never
// proven, and reports whether there was one: at MaxStreams, a new stream
// takes its place. An unproven stream costs its sender one datagram from
// any source address it writes, and the bounds per address and per IP
// address do not bound senders of many addresses; left in place until
// they expired (StreamIdle), such streams sent again each StreamIdle kept
// every new subscriber out, whose own stream is proven one round trip
// after it opens. It walks the streams (at most MaxStreams) only when a
// subscription finds the table full. t.mu is held.
func (t *pushTable) evictUnprovenLocked() bool {
	var old *stream
	for _, x := range t.list {
		// heard of an unproven stream is when it opened: only a proven
		// one is renewed.
		if !x.proven && (old == nil || x.heard < old.heard) {
			old = x
		}
	}
	if old == nil {
		return false
	}
	t.dropLocked(old)
	return true
}

// refuseLocked counts a refused subscription and logs it, at most once
// per StreamIdle with the count refused since the last line; it returns
// ENOSPC. c.push.mu is held.
func (c *Center) refuseLocked(from netip.AddrPort, bound string, now int64) wire.Errno {
	t := &c.push
	c.stats.subscribeRefused.Add(1)
	t.refused++
	if t.refusedAt == 0 || now-t.refusedAt >= int64(c.cfg.StreamIdle) {
		c.log.Warn("registry: subscriptions refused", "bound", bound, "last-from", from.String(),
			"refused", t.refused, "streams", len(t.streams))
		t.refused = 0
		t.refusedAt = now
	}
	return wire.ENOSPC
}

// withOwned runs fn, with t.mu held, on the stream that req's first
// parameter names if it belongs to req's source address (only its owner
// may check or close a stream), and returns what fn returns; otherwise it
// returns missing.
func (t *pushTable) withOwned(req *rfc.Request, missing wire.Errno, fn func(s *stream) wire.Errno) wire.Errno {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streams[req.Param(0).Uint64()]
	if s == nil || s.addr != req.From {
		return missing
	}
	return fn(s)
}

func (c *Center) serveUnsubscribe(req *rfc.Request, reply *wire.Params) wire.Errno {
	t := &c.push
	return t.withOwned(req, wire.ENOENT, func(s *stream) wire.Errno {
		t.dropLocked(s)
		return wire.OK
	})
}

// serveSubCheck renews a stream whose cookie the request echoes, and
// proves it if it was not: what queued since the subscription goes out.
// A wrong cookie is answered ESTALE, as for an unknown stream.
func (c *Center) serveSubCheck(req *rfc.Request, reply *wire.Params) wire.Errno {
	return c.push.withOwned(req, wire.ESTALE, func(s *stream) wire.Errno {
		if req.Param(1).Uint64() != s.cookie {
			return wire.ESTALE
		}
		s.heard = c.ep.Now()
		if !s.proven {
			s.proven = true
			if len(s.queue) > 0 || s.broken {
				c.wakeLocked(s)
			}
		}
		reply.Uint64(s.lastSeq)
		return wire.OK
	})
}
