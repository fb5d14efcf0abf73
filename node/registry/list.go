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
// the last. after is the key the request listed after. A page may hold no
// entry and still not be the last (ListScan): a caller listing a whole
// prefix goes on until next is "", never stops at an empty page, and
// resumes after next, not after its last entry. A malformed page, or one
// whose next key is refused (ListNext), is EPROTO.
func ReadList(p *wire.Packet, after string, dst []RawEntry) ([]RawEntry, string, error) {
	next, err := ListNext(p, after) // checks the header and the count
	if err != nil {
		return dst, "", err
	}
	for i := ListFirstEntry; i+1 < p.NParams(); i += 2 {
		k, r := p.Param(i), p.Param(i+1)
		if k.Type != wire.TypeString || r.Type != wire.TypeBytes {
			return dst, "", wire.EPROTO
		}
		dst = append(dst, RawEntry{Key: k.Str(), Record: append([]byte(nil), r.Bytes()...)})
	}
	return dst, next, nil
}

// ListNext returns the key to list after for the page that follows the
// CallList reply p, which listed the keys after after: "" if p is the
// last page; else the reply's next key, which a page that ended on
// skipped entries carries, or, when that is empty, the page's last
// entry's key. Every reader that follows a listing from page to page
// takes its next key here, so that a center cannot keep one looping: a
// page that is not the last yet names no key after after is EPROTO, as
// resuming after "" would start the listing over and resuming at or
// before after would list the same keys again, without end. A page
// whose header or entry count is malformed is EPROTO too.
func ListNext(p *wire.Packet, after string) (string, error) {
	n := p.NParams()
	if n < ListFirstEntry || (n-ListFirstEntry)%2 != 0 ||
		p.Param(0).Type != wire.TypeUint64 || p.Param(1).Type != wire.TypeString {
		return "", wire.EPROTO
	}
	if p.Param(0).Uint64() == 0 {
		return "", nil
	}
	next := p.Param(1).Str()
	if last := n - 2; next == "" && last >= ListFirstEntry && p.Param(last).Type == wire.TypeString {
		next = p.Param(last).Str()
	}
	if next <= after {
		return "", wire.EPROTO
	}
	return next, nil
}
