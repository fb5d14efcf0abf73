package rfc

import "fastcall/wire"

// The reply budget. A reply to a request that is not authenticated may be
// at most AmplifyFactor times the request's length (and never past the
// datagram limit), so that a forged source address cannot turn the engine
// into an amplifier. A client that wants a large reply in checksum mode
// pads its request with a bytes parameter; PadFor and AppendPad say how
// much. Every package that pads a request or sizes a reply uses these.

// zeroPad is the padding source: a request never needs more than
// MaxDatagram/AmplifyFactor+1 bytes of padding.
var zeroPad [wire.MaxDatagram/AmplifyFactor + 1]byte

// ReplyRoom returns how many bytes a reply to req may take: the datagram
// limit and, when req does not carry FlagAuth, at most AmplifyFactor times
// req's length.
func (ep *Endpoint) ReplyRoom(req *wire.Packet) int {
	return min(ep.cfg.MaxDatagram, ReplyBudget(req.Flags&wire.FlagAuth != 0, req.Len))
}

// ReplyBudget returns how many bytes the reply to a request of reqLen
// bytes may take by the amplification rule: AmplifyFactor times reqLen,
// or the largest datagram when the request is authenticated (auth).
// ReplyRoom applies it with the endpoint's own datagram limit; a member
// whose reply a router relays whole to the client applies it to the
// client's request.
func ReplyBudget(auth bool, reqLen int) int {
	if auth {
		return wire.MaxDatagram
	}
	return min(AmplifyFactor*reqLen, wire.MaxDatagram)
}

// PadFor returns how many bytes of padding a request of reqLen bytes
// (header and parameters, the padding parameter's own header included)
// needs so that an unauthenticated reply of up to reply bytes is within
// the budget. It is 0 when the request is long enough already.
func PadFor(reqLen, reply int) int {
	want := (reply + AmplifyFactor - 1) / AmplifyFactor
	if reqLen >= want {
		return 0
	}
	return want - reqLen
}

// AppendPad appends to ps, the parameters of a request, a bytes parameter
// long enough that an unauthenticated reply of up to reply bytes is within
// the budget. It appends the parameter even when it is empty, so that the
// request keeps the same schema.
func AppendPad(ps *wire.Params, reply int) {
	n := PadFor(wire.HeaderSize+ps.Len()+wire.ParamHdrSize, reply)
	if n > len(zeroPad) {
		n = len(zeroPad)
	}
	ps.Bytes(zeroPad[:n])
}
