package rfc

import (
	"net/netip"

	"fastcall/wire"
)

// CallFlags describe a registered call.
type CallFlags uint8

const (
	// Idempotent calls skip the duplicate-request cache: a
	// retransmission may run the handler again, or be answered EBUSY
	// when the queue is full. Use it for short calls; a long call should
	// stay in the cache, where a retransmission of a running call is
	// absorbed.
	Idempotent CallFlags = 1 << iota
	// OneWay calls get no reply, not even an error reply.
	OneWay
	// Inline handlers run on the reader goroutine, without a hand-off
	// to a worker. They must be short and must never block.
	Inline
	// Priority calls go to a separate queue served by a worker of their
	// own, ahead of ordinary calls (heartbeats use it).
	Priority
)

// Handler runs one call. It reads the request's parameters, appends its
// reply parameters to reply (a builder lent over the reply datagram) and
// returns OK or an error number. An error reply carries no parameters. A
// handler that panics is answered EFAULT and the endpoint stays up. The
// request and the builder are valid only during the call.
type Handler func(req *Request, reply *wire.Params) wire.Errno

// Request is a call as a handler sees it.
type Request struct {
	*wire.Packet
	From     netip.AddrPort
	Arrived  int64 // engine clock (Endpoint.Now) when the datagram was read
	Deadline int64 // engine clock when the caller gives up; 0 = none
	buf      []byte
	local    netip.Addr // the address it was sent to, on a wildcard socket: its reply goes out from it (message.local)
	stamp    uint32     // the reader's header clock field (Endpoint.stamp) for its batch
	onReader bool       // run by the reader: its reply carries stamp (replyStamp)
}

// callEntry is one registered call number.
type callEntry struct {
	no     uint16
	name   string
	schema wire.Schema
	flags  CallFlags
	h      Handler
	dh     DeferredHandler // instead of h, for RegisterDeferred
}

// Register adds a call number. Registering a number twice gives EEXIST;
// number 0 or a handler that is nil EINVAL; a number in the engine's own range
// (below 0x0100) is refused unless the engine registers it itself.
func (ep *Endpoint) Register(callNo uint16, name string, schema wire.Schema, flags CallFlags, h Handler) error {
	if callNo < wire.CallHeartbeatBase {
		return wire.EINVAL
	}
	return ep.register(callNo, name, schema, flags, h)
}

func (ep *Endpoint) register(callNo uint16, name string, schema wire.Schema, flags CallFlags, h Handler) error {
	if h == nil {
		return wire.EINVAL
	}
	return ep.registerEntry(&callEntry{no: callNo, name: name, schema: schema, flags: flags, h: h})
}

// registerEntry adds ce to the call table, with its own copy of the
// schema.
func (ep *Endpoint) registerEntry(ce *callEntry) error {
	return ep.registerEntries([]*callEntry{ce})
}

// registerEntries adds every entry of ces to the call table, each with
// its own copy of its schema, or none: an entry with number 0 or too long
// a schema is EINVAL, a number registered already or twice in ces EEXIST.
func (ep *Endpoint) registerEntries(ces []*callEntry) error {
	for _, ce := range ces {
		if ce.no == 0 || len(ce.schema) > wire.MaxParams {
			return wire.EINVAL
		}
	}
	ep.regMu.Lock()
	defer ep.regMu.Unlock()
	old := *ep.calls.Load()
	m := make(map[uint16]*callEntry, len(old)+len(ces))
	for k, v := range old {
		m[k] = v
	}
	for _, ce := range ces {
		if _, ok := m[ce.no]; ok {
			return wire.EEXIST
		}
		ce.schema = append(wire.Schema(nil), ce.schema...)
		m[ce.no] = ce
	}
	ep.calls.Store(&m)
	for _, ce := range ces {
		ep.NameCall(ce.no, ce.name)
	}
	return nil
}

// NameCall records a name for a call number this endpoint calls but does
// not serve, so that statistics show it.
func (ep *Endpoint) NameCall(callNo uint16, name string) {
	for {
		old := ep.names.Load()
		if (*old)[callNo] == name {
			return
		}
		m := make(map[uint16]string, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
		m[callNo] = name
		if ep.names.CompareAndSwap(old, &m) {
			return
		}
	}
}

// CallName returns the registered or recorded name of a call number.
func (ep *Endpoint) CallName(callNo uint16) string { return (*ep.names.Load())[callNo] }

func (ep *Endpoint) lookupCall(callNo uint16) *callEntry { return (*ep.calls.Load())[callNo] }
