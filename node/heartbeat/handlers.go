package heartbeat

import (
	"net/netip"

	"fastcall/rfc"
	"fastcall/wire"
)

// serveHeartbeat answers a probe. It runs on the engine's priority worker
// (rfc.Priority), ahead of ordinary calls, and holds Service.mu briefly.
func (s *Service) serveHeartbeat(req *rfc.Request, rep *wire.Params) wire.Errno {
	sInc := uint32(req.Param(hbParamInc).Uint64())
	if req.Incarnation > sInc {
		sInc = req.Incarnation
	}
	v := readView(req.Packet)
	var rv view
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return wire.ECLOSED
	}
	// Only a member's claims about this node count, and only from the
	// member's own address (a node id in a header is no proof: anyone
	// can write it). What a non-member says is answered and otherwise
	// ignored.
	m := s.lookupLocked(req.From, req.Src)
	if m != nil {
		if m.node == 0 {
			m.node = req.Src
		}
		s.observeLocked(m, sInc, req.Arrived)
		if m.addr == req.From {
			s.selfNewsLocked(m, v, req.Arrived)
		} else {
			s.stats.nonMember.Add(1)
		}
		rv = m.viewLocked()
	} else {
		s.stats.nonMember.Add(1)
	}
	s.mu.Unlock()
	rep.Uint64(uint64(s.ep.Incarnation()))
	rep.Uint64(uint64(rv.state))
	rep.Uint64(uint64(rv.inc))
	rep.Uint64(uint64(rv.died))
	return wire.OK
}

// serveProbeRequest queues an indirect probe for another member. The
// asker and the target must be members here (found by node id, else by address); the
// request is dropped when the relay queue is full. One-way: nothing is
// answered; the outcome goes back as a CallProbeAck.
func (s *Service) serveProbeRequest(req *rfc.Request, _ *wire.Params) wire.Errno {
	job := relayJob{
		from: req.From,
		seq:  req.Param(prqParamSeq).Uint64(),
		node: uint32(req.Param(prqParamNode).Uint64()),
		v: view{state: State(req.Param(prqParamViewState).Uint64()),
			inc: uint32(req.Param(prqParamViewInc).Uint64())},
	}
	addr, _ := netip.ParseAddrPort(req.Param(prqParamAddr).Str())
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return wire.ECLOSED
	}
	if s.mu.members[req.From] == nil {
		// Only members, from their own address, ask for indirect
		// probes: the probe carries the asker's view of the target, a
		// claim the target believes.
		s.mu.Unlock()
		s.stats.nonMember.Add(1)
		return wire.EPERM
	}
	var m *member
	if job.node != 0 {
		m = s.lookupLocked(netip.AddrPort{}, job.node)
	}
	if m == nil && addr.IsValid() {
		m = s.mu.members[addr]
	}
	if m != nil {
		job.target = m.addr
	}
	s.mu.Unlock()
	if m == nil || job.target == req.From {
		s.stats.relayDropped.Add(1)
		return wire.ENOENT
	}
	select {
	case s.relayQ <- job:
	default:
		s.stats.relayDropped.Add(1)
		return wire.EBUSY
	}
	return wire.OK
}

// serveProbeAck takes the outcome of an indirect probe this node asked
// for, from a member. A reached target is a sign of life for the member whose current
// suspect round carries the sequence number.
func (s *Service) serveProbeAck(req *rfc.Request, _ *wire.Params) wire.Errno {
	seq := req.Param(pakParamSeq).Uint64()
	reached := req.Param(pakParamReached).Bool()
	inc := uint32(req.Param(pakParamInc).Uint64())
	if seq == 0 || !reached {
		return wire.OK
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.members[req.From] == nil {
		s.stats.nonMember.Add(1)
		return wire.EPERM
	}
	for _, m := range s.mu.order {
		if m.ackSeq == seq && !m.removed {
			s.observeLocked(m, inc, req.Arrived)
			break
		}
	}
	return wire.OK
}
