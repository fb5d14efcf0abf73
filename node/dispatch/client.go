package dispatch

import (
	"context"
	"net/netip"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// Client helpers for a remote dispatcher (rfcctl dispatch submit|status).
// They use an existing endpoint and allocate per call; they are not meant
// for a hot path.

// SubmitRemote submits op to the dispatcher at dst with CallSubmit and
// returns the operation id. Every target must use op.Call (per-target
// calls cannot travel in CallSubmit: EINVAL), and the whole request must
// fit one datagram (EMSGSIZE otherwise; about 60 IPv4 targets with small
// parameters at the default 1400-byte limit). Errors are the
// dispatcher's (ECONFLICT, EBUSY, EINVAL...) or the engine's.
func SubmitRemote(ctx context.Context, ep *rfc.Endpoint, dst netip.AddrPort, op *Op) (uint64, error) {
	if len(op.Targets) == 0 || op.Deadline < 0 {
		return 0, wire.EINVAL
	}
	addrs := make([]netip.AddrPort, len(op.Targets))
	for i := range op.Targets {
		if op.Targets[i].Call.No != 0 || !op.Targets[i].Addr.IsValid() {
			return 0, wire.EINVAL
		}
		addrs[i] = op.Targets[i].Addr
	}
	ps := new(wire.Params)
	ps.Reset(make([]byte, ep.Config().MaxDatagram-wire.HeaderSize))
	req := submitOf(op, addrs)
	req.put(ps)
	if e := ps.Err(); e != wire.OK {
		return 0, e
	}
	var rep rfc.Reply
	if err := ep.Call(ctx, dst, CallSubmit, ps, &rep); err != nil {
		return 0, err
	}
	if rep.NParams() != 1 || rep.Param(subReplyID).Type != wire.TypeUint64 {
		return 0, wire.EPROTO
	}
	return rep.Param(subReplyID).Uint64(), nil
}

// SubmitSize returns the size of the CallSubmit datagram SubmitRemote
// would send for op, header included: past the endpoint's MaxDatagram,
// SubmitRemote refuses op with EMSGSIZE. A caller can name that bound
// before it calls.
func SubmitSize(op *Op) int {
	addrs := make([]netip.AddrPort, len(op.Targets))
	for i := range op.Targets {
		addrs[i] = op.Targets[i].Addr
	}
	var ps wire.Params
	ps.Reset(make([]byte, wire.MaxDatagram))
	req := submitOf(op, addrs)
	req.put(&ps)
	if ps.Err() != wire.OK {
		return wire.MaxDatagram + 1 // past any datagram
	}
	return wire.HeaderSize + ps.Len()
}

// submitOf is the CallSubmit request of op, sent to addrs (its targets).
func submitOf(op *Op, addrs []netip.AddrPort) submitRequest {
	return submitRequest{op.Resource, op.Kind.String(), uint64(op.Call.No), op.Call.Seg,
		FormatTargets(addrs), rfc.CeilMs(op.Deadline)}
}

// submitRequest is a CallSubmit request as it travels: text and numbers
// that SubmitRemote derives from an Op, and that tests write directly to
// send what SubmitRemote would refuse.
type submitRequest struct {
	resource, kind string
	call           uint64
	seg            []byte
	targets        string
	deadlineMs     int64
}

// put writes r into ps in the order of the subParam positions.
func (r *submitRequest) put(ps *wire.Params) {
	ps.String(r.resource)
	ps.String(r.kind)
	ps.Uint64(r.call)
	ps.Bytes(r.seg)
	ps.String(r.targets)
	ps.Int64(r.deadlineMs)
}

// StatusRemote returns the status of operation id at the dispatcher at
// dst, following CallStatus pages until every target's outcome is read.
// A reply that does not parse, or pages that do not advance, are EPROTO.
func StatusRemote(ctx context.Context, ep *rfc.Endpoint, dst netip.AddrPort, id uint64) (Status, error) {
	maxDg := ep.Config().MaxDatagram
	ps := new(wire.Params)
	buf := make([]byte, maxDg-wire.HeaderSize)
	var st Status
	var rep rfc.Reply
	cursor := uint64(0)
	for page := 0; page < maxStatusPages; page++ {
		ps.Reset(buf)
		ps.Uint64(id)
		ps.Uint64(cursor)
		rfc.AppendPad(ps, maxDg)
		if err := ep.Call(ctx, dst, CallStatus, ps, &rep); err != nil {
			return st, err
		}
		next, e := readStatusPage(&rep.Packet, &st, page == 0)
		if e != wire.OK {
			return st, e
		}
		if next == 0 {
			if len(st.Outcomes) != st.Targets {
				return st, wire.EPROTO
			}
			st.ID = id
			return st, nil
		}
		if next <= cursor || next != uint64(len(st.Outcomes)) {
			return st, wire.EPROTO
		}
		cursor = next
	}
	return st, wire.EPROTO
}

// readStatusPage appends one CallStatus reply page to st (its header
// fields from the first page) and returns the next cursor.
func readStatusPage(p *wire.Packet, st *Status, first bool) (uint64, wire.Errno) {
	n := p.NParams()
	if n < stReplyHead || (n-stReplyHead)%stEntryParams != 0 {
		return 0, wire.EPROTO
	}
	types := [stReplyHead]wire.Type{wire.TypeUint64, wire.TypeUint64, wire.TypeString, wire.TypeString,
		wire.TypeUint64, wire.TypeUint64, wire.TypeUint64, wire.TypeUint64}
	for i, t := range types {
		if p.Param(i).Type != t {
			return 0, wire.EPROTO
		}
	}
	if first {
		k, ok := KindByName(string(p.Param(stReplyKind).Bytes()))
		if !ok {
			return 0, wire.EPROTO
		}
		st.Kind = k
		st.State = State(p.Param(stReplyState).Uint64())
		st.Resource = p.Param(stReplyResource).Str()
		total := p.Param(stReplyTargets).Uint64()
		if total > maxQueueLen {
			return 0, wire.EPROTO
		}
		st.Targets = int(total)
		st.Done = int(p.Param(stReplyDone).Uint64())
		st.Failed = int(p.Param(stReplyFailed).Uint64())
		st.Elapsed = time.Duration(p.Param(stReplyElapsed).Uint64()) * time.Microsecond
	}
	for i := stReplyHead; i < n; i += stEntryParams {
		a, ea, el := p.Param(i+stEntryAddr), p.Param(i+stEntryErrno), p.Param(i+stEntryElapsed)
		if a.Type != wire.TypeString || ea.Type != wire.TypeUint64 || el.Type != wire.TypeUint64 || ea.Uint64() > 0xFFFF {
			return 0, wire.EPROTO
		}
		addr, err := netip.ParseAddrPort(string(a.Bytes()))
		if err != nil {
			return 0, wire.EPROTO
		}
		t := TargetStatus{Addr: addr, Errno: wire.Errno(ea.Uint64())}
		if v := el.Uint64(); v != notDone {
			t.Done = true
			t.Elapsed = time.Duration(v) * time.Microsecond
		}
		if len(st.Outcomes) >= st.Targets {
			return 0, wire.EPROTO
		}
		st.Outcomes = append(st.Outcomes, t)
	}
	return p.Param(stReplyNext).Uint64(), wire.OK
}

// WaitRemote polls StatusRemote every `every` (at least 1ms) until the
// operation is done or ctx ends (ETIMEDOUT / ECANCELED with the last
// status read).
func WaitRemote(ctx context.Context, ep *rfc.Endpoint, dst netip.AddrPort, id uint64, every time.Duration) (Status, error) {
	if every < time.Millisecond {
		every = time.Millisecond
	}
	for {
		st, err := StatusRemote(ctx, ep, dst, id)
		if err != nil || st.State == StateDone {
			return st, err
		}
		t := time.NewTimer(every)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return st, rfc.ContextErrno(ctx.Err())
		}
	}
}

// FormatTargets returns targets as CallSubmit spells them.
func FormatTargets(targets []netip.AddrPort) string {
	b := make([]byte, 0, len(targets)*22)
	for i, a := range targets {
		if i > 0 {
			b = append(b, ',')
		}
		b = a.AppendTo(b)
	}
	return string(b)
}

// ParseTargets parses CallSubmit's target text ("host:port,...").
func ParseTargets(s string) ([]netip.AddrPort, error) {
	ts, e := parseTargets(s, maxQueueLen, nil)
	if e != wire.OK {
		return nil, e
	}
	out := make([]netip.AddrPort, len(ts))
	for i := range ts {
		out[i] = ts[i].Addr
	}
	return out, nil
}
