package registry

import (
	"context"
	"net/netip"

	"fastcall/rfc"
	"fastcall/wire"
)

// The CallList request and reply, as clients and the anti-entropy of the
// centers send and read them.

// RawEntry is an entry of the whole namespace: its full key and its
// record (decode it with sdk.ParseRecord).
type RawEntry struct {
	Key    string
	Record []byte
}

// ListCall sends one CallList request to dst; the reply lands in reply.
func ListCall(ctx context.Context, ep *rfc.Endpoint, dst netip.AddrPort, prefix, after string, limit int, flags uint64, reply *rfc.Reply) error {
	maxDg := ep.Config().MaxDatagram
	var ps wire.Params
	ps.Reset(make([]byte, maxDg-wire.HeaderSize))
	BuildList(&ps, prefix, after, limit, flags, maxDg)
	if e := ps.Err(); e != wire.OK {
		return e
	}
	return ep.Call(ctx, dst, CallList, &ps, reply)
}

func BuildList(ps *wire.Params, prefix, after string, limit int, flags uint64, maxDg int) {
	ps.String(prefix)
	ps.String(after)
	ps.Uint64(uint64(limit))
	ps.Uint64(flags)
	rfc.AppendPad(ps, maxDg)
}

// ReadList appends the entries of a CallList reply to dst.
func ReadList(p *wire.Packet, dst []RawEntry) ([]RawEntry, bool, error) {
	if p.NParams() < 1 || p.NParams()%2 != 1 || p.Param(0).Type != wire.TypeUint64 {
		return dst, false, wire.EPROTO
	}
	for i := 1; i+1 < p.NParams(); i += 2 {
		k, r := p.Param(i), p.Param(i+1)
		if k.Type != wire.TypeString || r.Type != wire.TypeBytes {
			return dst, false, wire.EPROTO
		}
		dst = append(dst, RawEntry{Key: k.Str(), Record: append([]byte(nil), r.Bytes()...)})
	}
	return dst, p.Param(0).Uint64() != 0, nil
}
