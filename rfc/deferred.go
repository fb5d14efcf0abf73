package rfc

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"fastcall/wire"
)

// DeferredHandler runs one call whose reply may come later. It reads the
// request (valid only during the call) and either returns an error
// number, which is the reply, or returns OK and promises to answer
// through d: build the reply parameters in d.Params and call d.Reply
// exactly once, from any goroutine. Until then the call counts as
// running: a retransmission of it is absorbed by the duplicate cache,
// and Drain waits for it.
//
// With Inline the handler runs on the reader goroutine and must never
// block; a handler that forwards the call with GoFunc and replies from
// its completion function holds no goroutine while it waits.
type DeferredHandler func(req *Request, d *Deferred) wire.Errno

// Deferred is a call whose reply is pending. It belongs to the handler
// from the moment it returns OK until Reply; after Reply it is reused
// for another call and must not be touched.
type Deferred struct {
	ep       *Endpoint
	ce       *callEntry
	from     netip.AddrPort
	local    netip.Addr // the address the request was sent to (Request.local)
	src      uint32
	callID   uint64
	oneway   bool
	arrived  int64
	deadline int64
	ent      int32
	key      dupKey
	buf      []byte
	ps       wire.Params
	codec    codecRef
	live     atomic.Bool // between the handler's OK and Reply
}

// From returns the caller's address.
func (d *Deferred) From() netip.AddrPort { return d.from }

// Deadline returns the engine clock at which the caller gives up, 0 for
// none.
func (d *Deferred) Deadline() int64 { return d.deadline }

// Params returns the builder of the reply parameters, lent over the
// reply datagram. It is empty when the handler runs.
func (d *Deferred) Params() *wire.Params { return &d.ps }

// Reply answers the call: with the parameters built in Params when e is
// OK, with the error number e and no parameters otherwise. A reply that
// does not fit (Params reports an error) is answered with that error.
// Only the first Reply of a deferral counts.
func (d *Deferred) Reply(e wire.Errno) {
	if !d.live.CompareAndSwap(true, false) {
		return
	}
	ep := d.ep
	if e == wire.OK && d.ps.Err() != wire.OK {
		e = d.ps.Err()
	}
	cs := ep.stats.callIn(d.ce.no)
	cs.calls.Add(1)
	cs.lat.record(ep.Now() - d.arrived)
	if e != wire.OK {
		cs.errs.add(e)
	}
	n := 0
	if !d.oneway {
		n = ep.encodeReply(ep.codecOf(&d.codec), d.buf, d.ce.no, d.src, d.callID, e, &d.ps, ep.stamp())
	}
	ep.dup.end(d.ent, &d.key, d.buf[:n])
	if n > 0 {
		ep.replyTo(d.buf[:n], d.from, d.local)
	}
	ep.deferred.put(d)
	ep.busy.Add(-1)
}

// deferredPool holds the endpoint's Deferred records: at most MaxPending
// at once, made on first use and reused.
type deferredPool struct {
	mu   sync.Mutex
	free []*Deferred
	made int
	max  int
}

func (t *deferredPool) get(ep *Endpoint) *Deferred {
	t.mu.Lock()
	if n := len(t.free); n > 0 {
		d := t.free[n-1]
		t.free = t.free[:n-1]
		t.mu.Unlock()
		return d
	}
	if t.made == t.max {
		t.mu.Unlock()
		return nil
	}
	t.made++
	t.mu.Unlock()
	return &Deferred{ep: ep, buf: make([]byte, ep.cfg.MaxDatagram)}
}

func (t *deferredPool) put(d *Deferred) {
	t.mu.Lock()
	t.free = append(t.free, d)
	t.mu.Unlock()
}

// drop forgets a record that may still be referenced by a handler that
// panicked: it is never reused, and a new one may be made in its place.
func (t *deferredPool) drop() {
	t.mu.Lock()
	t.made--
	t.mu.Unlock()
}

// RegisterDeferred adds a call number served by a handler that may reply
// later (see DeferredHandler). Flags and errors are as for Register.
func (ep *Endpoint) RegisterDeferred(callNo uint16, name string, schema wire.Schema, flags CallFlags, h DeferredHandler) error {
	if callNo < wire.CallHeartbeatBase || h == nil {
		return wire.EINVAL
	}
	return ep.registerEntry(&callEntry{no: callNo, name: name, schema: schema, flags: flags, dh: h})
}

// runDeferred runs the deferred handler of ce for req, whose duplicate
// cache entry is ent/key. If the handler answers at once, the reply is
// encoded into out, the cache entry ended, and the reply length returned
// (0 for one-way calls); if it defers, runDeferred returns -1 and the
// reply is Deferred.Reply's business.
func (ep *Endpoint) runDeferred(ce *callEntry, req *Request, codec *wire.Codec, out []byte, ent int32, key *dupKey) int {
	d := ep.deferred.get(ep)
	e := wire.EBUSY
	if d != nil {
		d.ce, d.from, d.local, d.src, d.callID = ce, req.From, req.local, req.Src, req.CallID
		d.oneway = req.Flags&wire.FlagOneWay != 0 || ce.flags&OneWay != 0
		d.arrived, d.deadline = req.Arrived, req.Deadline
		d.ent, d.key = ent, *key
		d.ps.Reset(d.buf[wire.HeaderSize:ep.ReplyRoom(req.Packet)])
		d.live.Store(true)
		ep.busy.Add(1)
		var panicked bool
		e, panicked = invokeDeferred(ce.dh, req, d)
		if e == wire.OK {
			return -1
		}
		if !d.live.CompareAndSwap(true, false) {
			// The handler replied already, then returned an error: the
			// reply stands.
			return -1
		}
		ep.busy.Add(-1)
		if panicked {
			ep.deferred.drop()
		} else {
			ep.deferred.put(d)
		}
	} else {
		ep.stats.busy.Add(1)
	}
	cs := ep.stats.callIn(ce.no)
	cs.calls.Add(1)
	cs.errs.add(e)
	n := 0
	if req.Flags&wire.FlagOneWay == 0 && ce.flags&OneWay == 0 {
		n = ep.encodeReply(codec, out, ce.no, req.Src, req.CallID, e, nil, ep.replyStamp(req))
	}
	ep.dup.end(ent, key, out[:n])
	return n
}

// invokeDeferred runs a deferred handler, turning a panic into EFAULT.
func invokeDeferred(h DeferredHandler, req *Request, d *Deferred) (e wire.Errno, panicked bool) {
	defer func() {
		if recover() != nil {
			e, panicked = wire.EFAULT, true
		}
	}()
	return h(req, d), false
}
