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

// ReadList appends the entries of a CallList reply to dst and returns the
// key to list after for the next page (ListNext): "" when this page is
// the last. A page may hold no entry and still not be the last
// (ListScan): a caller listing a whole prefix goes on until next is "",
// never stops at an empty page, and resumes after next, not after its
// last entry.
func ReadList(p *wire.Packet, dst []RawEntry) ([]RawEntry, string, error) {
	if p.NParams() < ListFirstEntry || (p.NParams()-ListFirstEntry)%2 != 0 ||
		p.Param(0).Type != wire.TypeUint64 || p.Param(1).Type != wire.TypeString {
		return dst, "", wire.EPROTO
	}
	for i := ListFirstEntry; i+1 < p.NParams(); i += 2 {
		k, r := p.Param(i), p.Param(i+1)
		if k.Type != wire.TypeString || r.Type != wire.TypeBytes {
			return dst, "", wire.EPROTO
		}
		dst = append(dst, RawEntry{Key: k.Str(), Record: append([]byte(nil), r.Bytes()...)})
	}
	next := ListNext(p)
	if p.Param(0).Uint64() != 0 && next == "" {
		// Resuming after "" would start the listing over.
		return dst, "", wire.EPROTO
	}
	return dst, next, nil
}

// ListNext returns the key to list after for the page that follows the
// CallList reply p: "" if p is the last page (or malformed); else the
// reply's next key, which a page that ended on skipped entries carries,
// or, when that is empty, the page's last entry's key.
func ListNext(p *wire.Packet) string {
	n := p.NParams()
	if n < ListFirstEntry || p.Param(0).Type != wire.TypeUint64 || p.Param(1).Type != wire.TypeString ||
		p.Param(0).Uint64() == 0 {
		return ""
	}
	if next := p.Param(1).Str(); next != "" {
		return next
	}
	if last := n - 2; last >= ListFirstEntry && (n-ListFirstEntry)%2 == 0 && p.Param(last).Type == wire.TypeString {
		return p.Param(last).Str()
	}
	return ""
}
