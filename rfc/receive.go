package rfc

import (
	"encoding/binary"
	"errors"
	"net"
	"runtime"

	"fastcall/wire"
)

// readLoop is a reader goroutine: it reads batches of datagrams, matches
// replies to parked callers, answers what it can answer at once (error
// replies, cached replies, Inline calls) in one sendmmsg per batch, and
// hands other requests to the workers.
func (ep *Endpoint) readLoop(bc batchConn) {
	defer ep.wg.Done()
	n := ep.cfg.BatchSize
	limit := ep.cfg.MaxDatagram
	in := make([]message, n)
	out := make([]message, n)
	for i := range in {
		in[i].buf = make([]byte, limit+1) // one spare byte shows oversize datagrams
		out[i].buf = make([]byte, limit)
	}
	rd := &reader{ep: ep, in: in, out: out, w: newWriter(n), bc: bc}
	handle := rd.batch
	for {
		err := bc.serve(in, handle)
		if ep.closed.Load() || errors.Is(err, net.ErrClosed) {
			return
		}
		ep.stats.readErrs.Add(1)
	}
}

// batch handles the got datagrams read into rd.in: replies go to parked
// callers, and what can be answered at once is sent in one sendmmsg.
func (rd *reader) batch(got int) {
	ep := rd.ep
	// One reading of the time for the batch: the datagrams were read
	// together, and the replies queued here go out together at its end.
	now, stamp := ep.clock()
	rd.stamp = stamp
	rd.codec = ep.codecOf(&rd.cref)
	rd.nout = 0
	rd.woke = false
	ep.stats.rx.Add(uint64(got))
	for i := 0; i < got; i++ {
		rd.datagram(rd.in[i].buf[:rd.in[i].n], &rd.in[i], now)
	}
	if rd.nout > 0 {
		sent, _ := rd.bc.write(rd.w, rd.out[:rd.nout])
		ep.stats.tx.Add(uint64(sent))
		if sent < rd.nout {
			ep.stats.sendErrs.Add(uint64(rd.nout - sent))
		}
	}
	if rd.woke && got == len(rd.in) {
		// A full batch: this goroutine reads again at once. Let the
		// callers just woken run first. (After a short batch it waits
		// on the poller, which lets them run anyway.)
		runtime.Gosched()
	}
}

// reader is the per-reader-goroutine state.
type reader struct {
	ep    *Endpoint
	bc    batchConn
	in    []message // datagrams read
	codec *wire.Codec
	cref  codecRef
	pkt   wire.Packet
	out   []message // replies to send at the end of the batch
	nout  int
	w     *writeState
	req   Request
	ps    wire.Params
	woke  bool   // a parked caller was woken in this batch
	stamp uint32 // the header clock field (Endpoint.stamp) of the batch
}

// outSlot returns the next reply buffer of the batch, or nil if full.
func (rd *reader) outSlot() *message {
	if rd.nout == len(rd.out) {
		return nil
	}
	return &rd.out[rd.nout]
}

// errorReply queues an error reply to the request in rd.pkt.
func (rd *reader) errorReply(m *message, e wire.Errno) { rd.errorReplyInc(m, e, 0) }

// fenceReply queues the ESTALE refusal of a non-idempotent request that
// names no incarnation of this process. It carries this process's
// incarnation in the peer-incarnation field too, which marks it apart from
// an ESTALE that a handler or the duplicate cache's floor returns.
func (rd *reader) fenceReply(m *message) { rd.errorReplyInc(m, wire.ESTALE, rd.ep.inc.Load()) }

func (rd *reader) errorReplyInc(m *message, e wire.Errno, peerInc uint32) {
	o := rd.outSlot()
	if o == nil || rd.pkt.Flags&wire.FlagOneWay != 0 {
		return
	}
	if rd.pkt.Flags&wire.FlagAuth == 0 && !rd.ep.errLim.allow(rd.ep.Now()) {
		return
	}
	h := wire.Header{Flags: wire.FlagReply | wire.FlagError, CallNo: rd.pkt.CallNo, Errno: e, Src: rd.ep.id,
		Dst: rd.pkt.Src, CallID: rd.pkt.CallID, Incarnation: rd.ep.inc.Load(), PeerInc: peerInc, Stamp: rd.stamp}
	n, err := rd.codec.Encode(o.buf, &h, nil, 0)
	if err != wire.OK {
		return
	}
	o.n, o.addr, o.local = n, m.addr, m.local
	rd.nout++
	rd.ep.stats.callIn(rd.pkt.CallNo).errs.add(e)
}

func (rd *reader) datagram(b []byte, m *message, now int64) {
	ep := rd.ep
	p := &rd.pkt
	// b is a receive buffer of this goroutine's, which nothing else
	// reads or writes during the batch.
	if r := rd.codec.DecodeOwned(p, b); r != wire.ReasonNone {
		ep.stats.drops[r].Add(1)
		// Answer only what is exactly as its sender sent it.
		if p.Verified && p.Flags&wire.FlagRequest != 0 {
			rd.errorReply(m, r.Errno())
		}
		return
	}
	if p.Dst != 0 && p.Dst != ep.id {
		ep.stats.wrongDst.Add(1)
		return
	}
	if ep.tooOld(p.Stamp, rd.stamp) {
		ep.stats.tooOld.Add(1)
		return
	}
	if p.Flags&wire.FlagReply != 0 {
		// A reply is a sign of life only once it is matched to a call
		// (deliver); it never makes a peer entry.
		if ep.deliver(p, m, now) {
			rd.woke = true
		}
		return
	}
	if p.Dst == 0 && ep.reflected(p, m.addr) {
		ep.stats.reflected.Add(1)
		return
	}
	var peer *peerState
	if p.Flags&wire.FlagAuth != 0 {
		peer = ep.peers.learnSender(m.addr, senderKey(p.Src, p.Incarnation), p.Stamp, now)
	} else {
		peer = ep.peers.learn(m.addr, now)
	}
	if peer != nil {
		ep.heard(peer, p, now)
	}
	rd.serve(m, peer, now)
}

// deliver matches a reply to its parked caller and reports whether it
// completed a call. A matched reply is a sign of life from the peer the
// call went to.
//
// A fence refusal (an ESTALE reply whose peer-incarnation field is set:
// fenceReply) of a request that named no callee incarnation (the first
// call to a peer) means the callee did not run it: the request is sent
// again at once naming the incarnation the reply carries, and the call
// goes on. A fence refusal naming the incarnation the resent request
// carries answers a copy sent before the resend, and is dropped.
func (ep *Endpoint) deliver(pkt *wire.Packet, m *message, now int64) bool {
	p := ep.pending.byID(pkt.CallID)
	if p == nil {
		ep.stats.lateReplies.Add(1)
		return false
	}
	p.mu.Lock()
	if p.mu.state != slotWaiting || p.mu.callID != pkt.CallID || p.mu.dst != m.addr {
		p.mu.Unlock()
		ep.stats.lateReplies.Add(1)
		return false
	}
	// The peer is told before the caller wakes, so that its next call
	// carries what this reply taught (the callee's incarnation).
	peer := p.mu.peer
	revived := peer != nil && ep.noteHeard(peer, pkt, now, false)
	if pkt.Errno == wire.ESTALE && pkt.PeerInc != 0 && pkt.Incarnation != 0 {
		named := binary.BigEndian.Uint32(p.mu.req[wire.OffPeerInc:])
		resend := named == 0
		if resend {
			binary.BigEndian.PutUint32(p.mu.req[wire.OffPeerInc:], pkt.Incarnation)
			p.mu.learnt = true
			p.mu.retrans++
			ep.sendBudgetLocked(p, now)
		}
		if resend || (p.mu.learnt && named == pkt.Incarnation) {
			p.mu.Unlock()
			if resend {
				ep.stats.callOut(pkt.CallNo).retrans.Add(1)
			} else {
				ep.stats.lateReplies.Add(1)
			}
			if revived {
				ep.notify(peer)
			}
			return false
		}
	}
	n := copy(p.mu.rep, pkt.Datagram())
	p.mu.pkt = *pkt
	p.mu.pkt.Rebase(p.mu.rep[:n])
	rtt := now - p.mu.sentAt
	clean := p.mu.retrans == 0
	callNo := p.mu.callNo
	id := p.mu.callID
	fn := p.completeLocked(pkt.Errno)
	p.mu.Unlock()
	ep.timers.settled(id)
	if revived {
		ep.notify(peer)
	}
	if clean && peer != nil {
		peer.sample(rtt, int64(ep.cfg.MinRTO), int64(ep.cfg.MaxRTO))
	}
	cs := ep.stats.callOut(callNo)
	cs.lat.record(rtt)
	if pkt.Errno != wire.OK {
		cs.errs.add(pkt.Errno)
	}
	if fn != nil {
		p.finish(fn)
		return false
	}
	return true
}

// serve decides what happens to a request: refusal, duplicate handling,
// inline run, or hand-off to a worker.
func (rd *reader) serve(m *message, peer *peerState, now int64) {
	ep := rd.ep
	p := &rd.pkt
	ce := ep.lookupCall(p.CallNo)
	if ce == nil {
		rd.errorReply(m, wire.ENOCALL)
		return
	}
	if !ce.schema.Match(p) {
		rd.errorReply(m, wire.EINVAL)
		return
	}
	var deadline int64
	if p.Budget != 0 {
		deadline = now + int64(p.Budget)*1000
	}
	ent := int32(-1)
	var key dupKey
	if ce.flags&Idempotent == 0 {
		// A request that names no incarnation of this process (none at
		// all, or an earlier process's) may have run at an earlier
		// process on this address: it is refused, never run.
		if !ep.ownIncarnation(p.PeerInc) {
			ep.stats.stale.Add(1)
			rd.fenceReply(m)
			return
		}
		dp := peer
		var home *homeRec
		if p.Flags&wire.FlagAuth != 0 {
			// The tag does not cover the source address: a sender's
			// requests are judged at its home entry, from any
			// address, a sender without node id by its incarnation.
			dp, home = ep.peers.homeOf(senderKey(p.Src, p.Incarnation), peer, now)
		}
		if dp == nil {
			// The peer table is full: without a floor for the sender,
			// at-most-once could not be kept.
			ep.stats.peersFull.Add(1)
			rd.errorReply(m, wire.EBUSY)
			return
		}
		key = dupKey{addr: dp.addr, src: p.Src, incarn: p.Incarnation, callID: p.CallID}
		o := rd.outSlot()
		var scratch []byte
		if o != nil {
			scratch = o.buf
		}
		keep := now + int64(ep.cfg.DupAge)
		if deadline != 0 {
			keep = deadline + int64(ep.cfg.MaxRTO)
		}
		outcome, n, e := ep.dup.begin(&key, requestSum(p), dp, home, m.addr, now, keep, scratch)
		switch outcome {
		case dupBusy:
			ep.stats.callIn(p.CallNo).dups.Add(1)
			return
		case dupOther:
			ep.stats.dupOther.Add(1)
			return
		case dupElsewhere:
			// A copy from another address than its original's: the
			// reply or refusal would be reflected at that address.
			ep.stats.dupAddr.Add(1)
			return
		case dupReplay:
			ep.stats.callIn(p.CallNo).dups.Add(1)
			if o != nil && n > 0 && n <= ep.ReplyRoom(p) && p.Flags&wire.FlagOneWay == 0 {
				// Stamped anew: the caller applies the age bound to
				// replies too.
				rd.codec.Restamp(o.buf[:n], 0, rd.stamp, false)
				o.n, o.addr, o.local = n, m.addr, m.local
				rd.nout++
			}
			return
		case dupStale:
			ep.stats.stale.Add(1)
			rd.errorReply(m, wire.ESTALE)
			return
		case dupFull:
			ep.stats.busy.Add(1)
			rd.errorReply(m, wire.EBUSY)
			return
		}
		ent = e
	}
	// The request counts as in flight (busy) before draining is read,
	// and Drain sets draining before it reads busy: either this request
	// is refused here or Drain waits until it is answered, so no handler
	// runs after Drain returned.
	ep.busy.Add(1)
	if ep.draining.Load() {
		// Shutting down: retransmissions were absorbed or answered
		// above; a new call is refused.
		ep.busy.Add(-1)
		ep.dup.forget(ent, &key)
		rd.errorReply(m, wire.ECLOSED)
		return
	}
	if ce.flags&Inline != 0 {
		o := rd.outSlot()
		if o == nil {
			ep.busy.Add(-1)
			ep.dup.forget(ent, &key)
			ep.stats.busy.Add(1)
			return
		}
		rd.req = Request{Packet: p, From: m.addr, Arrived: now, Deadline: deadline, local: m.local, stamp: rd.stamp, onReader: true}
		if n := ep.answer(ce, &rd.req, rd.codec, o.buf, &rd.ps, ent, &key); n > 0 {
			o.n, o.addr, o.local = n, m.addr, m.local
			rd.nout++
		}
		ep.busy.Add(-1)
		return
	}
	var r *request
	select {
	case r = <-ep.reqFree:
	default:
		ep.busy.Add(-1)
		ep.dup.forget(ent, &key)
		ep.stats.busy.Add(1)
		rd.errorReply(m, wire.EBUSY)
		return
	}
	if r.buf == nil {
		r.buf = make([]byte, ep.cfg.MaxDatagram)
	}
	n := copy(r.buf, p.Datagram())
	r.pkt = *p
	r.pkt.Rebase(r.buf[:n])
	r.Request = Request{Packet: &r.pkt, From: m.addr, Arrived: now, Deadline: deadline, local: m.local, buf: r.buf}
	r.ce, r.ent, r.key = ce, ent, key
	q := ep.queue
	if ce.flags&Priority != 0 {
		q = ep.prio
	}
	select {
	case q <- r:
	default:
		ep.busy.Add(-1)
		ep.reqFree <- r
		ep.dup.forget(ent, &key)
		ep.stats.busy.Add(1)
		rd.errorReply(m, wire.EBUSY)
	}
}
