package rfc

import (
	"fastcall/wire"
)

// workLoop is a worker goroutine: it runs queued requests and sends their
// replies.
func (ep *Endpoint) workLoop(q chan *request) {
	defer ep.wg.Done()
	var cr codecRef
	buf := make([]byte, ep.cfg.MaxDatagram)
	var ps wire.Params
	for {
		select {
		case r := <-q:
			codec := ep.codecOf(&cr)
			if r.Deadline != 0 && ep.Now() > r.Deadline {
				// The caller has given up: do not run it. Remember an
				// ETIMEDOUT answer in case a retransmission arrives.
				ep.stats.expired.Add(1)
				n := ep.encodeReply(codec, buf, r.CallNo, r.Src, r.CallID, wire.ETIMEDOUT, nil, ep.stamp())
				ep.dup.end(r.ent, &r.key, buf[:n])
			} else {
				// The reply goes out as soon as the handler returns.
				if n := ep.answer(r.ce, &r.Request, codec, buf, &ps, r.ent, &r.key); n > 0 {
					ep.replyTo(buf[:n], r.From, r.local)
				}
			}
			r.ce = nil
			ep.reqFree <- r
			ep.busy.Add(-1)
		case <-ep.done:
			return
		}
	}
}

// answer runs the handler of ce for req, with its reply built in out and
// the request's duplicate cache entry ent/key ended, and returns the
// length of the reply to send now: 0 for none (a one-way call), below 0
// when a deferred handler will reply later (Deferred.Reply).
func (ep *Endpoint) answer(ce *callEntry, req *Request, codec *wire.Codec, out []byte, ps *wire.Params, ent int32, key *dupKey) int {
	if ce.dh != nil {
		return ep.runDeferred(ce, req, codec, out, ent, key)
	}
	n := ep.run(ce, req, codec, out, ps)
	ep.dup.end(ent, key, out[:n])
	return n
}

// run calls the handler with a reply builder over out and encodes the
// reply into out. It returns the reply length, 0 for one-way calls.
func (ep *Endpoint) run(ce *callEntry, req *Request, codec *wire.Codec, out []byte, ps *wire.Params) int {
	ps.Reset(out[wire.HeaderSize:ep.ReplyRoom(req.Packet)])
	start := ep.Now()
	e := invoke(ce.h, req, ps)
	if e == wire.OK && ps.Err() != wire.OK {
		e = ps.Err()
	}
	cs := ep.stats.callIn(ce.no)
	cs.calls.Add(1)
	cs.lat.record(ep.Now() - start)
	if e != wire.OK {
		cs.errs.add(e)
	}
	if req.Flags&wire.FlagOneWay != 0 || ce.flags&OneWay != 0 {
		return 0
	}
	return ep.encodeReply(codec, out, req.CallNo, req.Src, req.CallID, e, ps, ep.replyStamp(req))
}

// replyStamp returns the header clock field of the reply to req, made
// now: the reader's reading for its batch when the reader runs the call
// (inline, never blocking), else the clock now, read after the handler
// returned: a stamp read before it would age by the handler's run time,
// and a reply older than the caller's age bound is dropped there.
func (ep *Endpoint) replyStamp(req *Request) uint32 {
	if req.onReader {
		return req.stamp
	}
	return ep.stamp()
}

// encodeReply writes into out the reply to call callID of node dst: the
// parameters of ps on success, none on error, with the header clock field
// stamp.
func (ep *Endpoint) encodeReply(codec *wire.Codec, out []byte, callNo uint16, dst uint32, callID uint64, e wire.Errno, ps *wire.Params, stamp uint32) int {
	h := wire.Header{Flags: wire.FlagReply, CallNo: callNo, Errno: e, Src: ep.id, Dst: dst,
		CallID: callID, Incarnation: ep.inc.Load(), Stamp: stamp}
	var n int
	var err wire.Errno
	if e != wire.OK || ps == nil {
		if e != wire.OK {
			h.Flags |= wire.FlagError
		}
		n, err = codec.Encode(out, &h, nil, 0)
	} else {
		n, err = codec.EncodeParams(out, &h, ps)
	}
	if err != wire.OK {
		h.Flags |= wire.FlagError
		h.Errno = err
		n, _ = codec.Encode(out, &h, nil, 0)
	}
	return n
}

// invoke runs a handler, turning a panic into EFAULT.
func invoke(h Handler, req *Request, ps *wire.Params) (e wire.Errno) {
	defer func() {
		if recover() != nil {
			e = wire.EFAULT
		}
	}()
	return h(req, ps)
}
