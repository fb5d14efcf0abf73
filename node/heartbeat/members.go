package heartbeat

import (
	"context"
	"math"
	"net/netip"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// serveMembers answers one page of this node's member view. The page
// holds as many entries as fit the endpoint's datagram limit.
func (s *Service) serveMembers(req *rfc.Request, rep *wire.Params) wire.Errno {
	cursor := req.Param(memParamCursor).Uint64()
	room := s.ep.ReplyRoom(req.Packet) - wire.HeaderSize
	if room < memHeadSize+memEntryMax {
		return wire.EMSGSIZE
	}
	now := s.ep.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var next uint64
	live := make([]*member, 0, len(s.mu.order))
	for _, m := range s.mu.order {
		if !m.removed {
			live = append(live, m)
		}
	}
	if cursor > uint64(len(live)) {
		return wire.EINVAL
	}
	// The next cursor is written first; reserve it and fill it at the end.
	nextAt := rep.ReserveUint64()
	rep.Uint64(uint64(s.ep.NodeID()))
	rep.Uint64(uint64(s.ep.Incarnation()))
	var text [maxAddrText]byte
	for i := int(cursor); i < len(live); i++ {
		if rep.Len()+memEntryMax > room || rep.Count()+memEntryParams > wire.MaxParams {
			next = uint64(i)
			break
		}
		m := live[i]
		info := m.infoLocked(now)
		rep.String(string(m.addr.AppendTo(text[:0])))
		rep.Uint64(uint64(info.Node))
		rep.Uint64(uint64(info.State))
		rep.Uint64(uint64(info.Incarnation))
		ago := uint64(math.MaxUint64)
		if info.HeardAgo >= 0 {
			ago = uint64(info.HeardAgo / time.Microsecond)
		}
		rep.Uint64(ago)
	}
	rep.SetUint64(nextAt, next)
	return rep.Err()
}

// MembersView is a node's answer to CallMembers.
type MembersView struct {
	Node        uint32
	Incarnation uint32
	Members     []MemberInfo
}

// QueryMembers asks the node at addr for its member list (see
// QueryMembersView).
func QueryMembers(ctx context.Context, ep *rfc.Endpoint, addr netip.AddrPort) ([]MemberInfo, error) {
	v, err := QueryMembersView(ctx, ep, addr)
	return v.Members, err
}

// QueryMembersView asks the node at addr for its member view, following
// the pages until the last (at most maxMemberPages). It returns the error
// number of the first call that fails, or EPROTO for a malformed page.
func QueryMembersView(ctx context.Context, ep *rfc.Endpoint, addr netip.AddrPort) (MembersView, error) {
	var view MembersView
	var rep rfc.Reply
	var ps wire.Params
	maxDg := ep.Config().MaxDatagram
	buf := make([]byte, maxDg-wire.HeaderSize)
	cursor := uint64(0)
	for page := 0; page < maxMemberPages; page++ {
		ps.Reset(buf)
		ps.Uint64(cursor)
		rfc.AppendPad(&ps, maxDg)
		if err := ep.Call(ctx, addr, CallMembers, &ps, &rep); err != nil {
			return view, err
		}
		n := rep.NParams()
		if n < memReplyHead || (n-memReplyHead)%memEntryParams != 0 {
			return view, wire.EPROTO
		}
		for i := 0; i < n; i++ {
			t := rep.Param(i).Type
			want := wire.TypeUint64
			if i >= memReplyHead && (i-memReplyHead)%memEntryParams == memEntryAddr {
				want = wire.TypeString
			}
			if t != want {
				return view, wire.EPROTO
			}
		}
		var nok, iok bool
		view.Node, nok = rep.Param(memReplyNode).Uint32()
		view.Incarnation, iok = rep.Param(memReplyInc).Uint32()
		if !nok || !iok {
			return view, wire.EPROTO
		}
		for i := memReplyHead; i < n; i += memEntryParams {
			mi, ok := readMember(&rep.Packet, i)
			if !ok {
				return view, wire.EPROTO
			}
			view.Members = append(view.Members, mi)
		}
		next := rep.Param(memReplyNext).Uint64()
		if next == 0 {
			return view, nil
		}
		if next <= cursor {
			return view, wire.EPROTO
		}
		cursor = next
	}
	return view, wire.EPROTO
}

// readMember decodes the member entry at parameter i of a members page
// whose types are checked. ok is false for a malformed entry: an address
// that does not parse, a state that is none, a node id or incarnation
// past 32 bits, or a heard-ago past what a Duration holds (other than
// never), each of which would otherwise be read cut as another valid
// value.
func readMember(p *wire.Packet, i int) (MemberInfo, bool) {
	a, err := netip.ParseAddrPort(p.Param(i + memEntryAddr).Str())
	st, sok := readState(p.Param(i + memEntryState))
	node, nok := p.Param(i + memEntryNode).Uint32()
	inc, iok := p.Param(i + memEntryInc).Uint32()
	us := p.Param(i + memEntryHeardAgo).Uint64()
	ago := time.Duration(-1)
	if us != math.MaxUint64 {
		if us > uint64(math.MaxInt64/time.Microsecond) {
			return MemberInfo{}, false
		}
		ago = time.Duration(us) * time.Microsecond
	}
	if err != nil || !sok || !nok || !iok {
		return MemberInfo{}, false
	}
	// As the engine names a sender: a member listed in IPv4-mapped form
	// is the same member, not a second one (nor this node unrecognized).
	return MemberInfo{Addr: rfc.PeerAddr(a), Node: node, State: st, Incarnation: inc, HeardAgo: ago}, true
}
