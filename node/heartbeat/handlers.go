package heartbeat

import (
	"net/netip"

	"fastcall/rfc"
	"fastcall/wire"
)

// serveHeartbeat answers a probe. It runs on the engine's priority worker
// (rfc.Priority), ahead of ordinary calls, and holds Service.mu briefly.
func (s *Service) serveHeartbeat(req *rfc.Request, rep *wire.Params) wire.Errno {
	sInc, ok := senderInc(req, hbParamInc)
	v, vok := readView(req.Packet)
	if !ok || !vok {
		return wire.EINVAL
	}
	upd := req.Param(hbParamUpdates).Bytes()
	var rv view
	s.mu.Lock()
	if s.mu.Closed {
		s.mu.Unlock()
		return wire.ECLOSED
	}
	// Only a member's claims count, and only from the member's own
	// address (a node id in a header is no proof: anyone can write it,
	// and the members page shows every node id): neither its sign of
	// life, nor its incarnation, nor what it says of this node. What
	// anyone else says is answered and otherwise ignored.
	m := s.lookupLocked(req.From, req.Src)
	if m != nil {
		if m.addr == req.From {
			s.heardFromLocked(m, req, sInc)
			s.selfNewsLocked(m, v, req.Arrived)
			if len(upd) > 0 {
				s.applyUpdatesLocked(m, upd, req.Arrived)
			}
		} else {
			s.stats.nonMember.Add(1)
		}
		rv = m.viewLocked()
	} else {
		s.stats.nonMember.Add(1)
	}
	// Updates go back within the reply budget (rfc.Endpoint.ReplyRoom),
	// and only to members.
	var buf [piggybackBuf]byte
	out := buf[:0]
	if m != nil && m.addr == req.From {
		room := s.ep.ReplyRoom(req.Packet) - wire.HeaderSize - hbParams*sizeU64Param - wire.ParamHdrSize
		out = s.takeUpdatesLocked(out, min(room, rep.Cap()-rep.Len()-hbParams*sizeU64Param-wire.ParamHdrSize))
	}
	s.mu.Unlock()
	rep.Uint64(uint64(s.ep.Incarnation()))
	rep.Uint64(uint64(rv.state))
	rep.Uint64(uint64(rv.inc))
	rep.Uint64(uint64(rv.died))
	rep.Bytes(out)
	return wire.OK
}

// serveProbeRequest queues an indirect probe for another member. The
// asker and the target must be members here (the target at the address
// the request names, else by node id); the request is dropped when the
// relay queue is full. One-way: nothing is answered; the outcome goes
// back as a CallProbeAck.
func (s *Service) serveProbeRequest(req *rfc.Request, _ *wire.Params) wire.Errno {
	node, nok := req.Param(prqParamNode).Uint32()
	st, sok := readState(req.Param(prqParamViewState))
	inc, iok := req.Param(prqParamViewInc).Uint32()
	if !nok || !sok || !iok {
		return wire.EINVAL
	}
	job := relayJob{from: req.From, seq: req.Param(prqParamSeq).Uint64(), node: node, v: view{state: st, inc: inc}}
	if job.v.state != StateSuspect {
		// A relayed probe passes on at most the asker's suspicion: a
		// death is only ever told by the member that declared it, in its
		// own heartbeats (the target reports EventDeclaredDeadBy from
		// whoever sends the probe, here this node).
		job.v = view{}
	}
	addr, _ := netip.ParseAddrPort(req.Param(prqParamAddr).Str())
	s.mu.Lock()
	if s.mu.Closed {
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
	// The target is the member at the address the asker gave, else the
	// one holding the node id it gave (a member the asker knows at
	// another address: through a relay, or a second socket). Members may
	// disagree on which member holds a node id: a member takes none
	// another holds, so a node that joined under y's id is held under it
	// where y was not known first, and without it where y was; a helper
	// that looked by node id first probed y for the rounds about the
	// joiner, and y's replies kept the joiner alive after it crashed.
	m := s.lookupLocked(rfc.PeerAddr(addr), job.node)
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
	s.wakeLoop()
	return wire.OK
}

// serveProbeAck takes the outcome of an indirect probe this node asked
// for, from a helper it asked in that round (at its own address). A
// reached target is a sign of life for the member whose current indirect
// round carries the sequence number and whose node id the ack names (as
// the request told the helper: 0 if this node did not know it then); for
// a member suspect here (its rounds go on: suspectRoundLocked), only at
// an incarnation at or above the suspected one, and then it clears the
// suspicion.
// An ack about another target is no news of the round's member: round
// numbers start at the clock (Service.seq), but an ack sent to an earlier
// process (held in the network, or replayed within the age bound) may
// still carry the number of a round about another member if the clock
// stepped back across the restart.
func (s *Service) serveProbeAck(req *rfc.Request, _ *wire.Params) wire.Errno {
	seq := req.Param(pakParamSeq).Uint64()
	node, nok := req.Param(pakParamNode).Uint32()
	reached := req.Param(pakParamReached).Bool()
	inc, iok := req.Param(pakParamInc).Uint32()
	if !nok || !iok {
		return wire.EINVAL
	}
	if seq == 0 {
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
			if node != 0 && node != m.node {
				s.stats.nonMember.Add(1)
				return wire.EPERM
			}
			if !containsAddr(m.asked, req.From) {
				// Not a helper this round asked: the sequence numbers
				// are easy to guess, the list of helpers asked is not
				// forged.
				s.stats.nonMember.Add(1)
				return wire.EPERM
			}
			if reached && (m.state != StateSuspect || inc >= m.inc) {
				// A suspect member reached below the suspected
				// incarnation is no news of it as it is now.
				s.observeLocked(m, inc, req.Arrived)
			}
			break
		}
	}
	return wire.OK
}

// serveGossip applies the membership updates a member sent alone
// (CallGossip), from its own address; anything else is counted in
// NonMember and dropped. The datagram is a sign of life of its sender.
func (s *Service) serveGossip(req *rfc.Request, _ *wire.Params) wire.Errno {
	sInc, ok := senderInc(req, gsParamInc)
	if !ok {
		return wire.EINVAL
	}
	upd := req.Param(gsParamUpdates).Bytes()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.Closed {
		return wire.ECLOSED
	}
	m := s.mu.members[req.From]
	if m == nil || m.removed {
		s.stats.nonMember.Add(1)
		return wire.EPERM
	}
	s.heardFromLocked(m, req, sInc)
	s.applyUpdatesLocked(m, upd, req.Arrived)
	return wire.OK
}

// senderInc is the incarnation a request says its sender is at: the
// parameter at index param, or the header's incarnation when that is
// higher. ok is false for a parameter past 32 bits (refused EINVAL).
func senderInc(req *rfc.Request, param int) (uint32, bool) {
	inc, ok := req.Param(param).Uint32()
	return max(inc, req.Incarnation), ok
}

// heardFromLocked takes request req, sent by member m from its own
// address and saying m is at incarnation inc, as what it tells of m:
// m's node id, if not known yet, and a sign of life if it is fresh
// (freshLocked). The caller holds s.mu.
func (s *Service) heardFromLocked(m *member, req *rfc.Request, inc uint32) {
	s.adoptNodeLocked(m, req.Src)
	if s.freshLocked(m, req, inc) {
		s.observeLocked(m, inc, req.Arrived)
	}
}

// adoptNodeLocked gives m node id node, m's own word (its datagram or
// reply), if m has none yet and no other member holds it. A helper that
// holds no member at the address an indirect probe names finds the
// target by node id: a member that took a live member's id (a node
// joining under it) would have such helpers probe that member instead,
// whose replies kept it alive after it crashed.
// The caller holds s.mu.
func (s *Service) adoptNodeLocked(m *member, node uint32) {
	if m.node != 0 || node == 0 {
		return
	}
	if o := s.lookupLocked(netip.AddrPort{}, node); o != nil && o != m {
		return
	}
	m.node = node
}

// freshLocked reports whether request req from member m, carrying m's
// incarnation inc, is news of m: the engine counted it as a sign of life
// (docs/PROTOCOL.md, "Liveness evidence"), or it carries an incarnation
// above the highest heard of m. A copy of a request heard before,
// replayed within the age bound, is neither, and must not keep a crashed
// member alive here; a request stamped in the same millisecond as the
// one before it is not a sign of life for the engine but may carry a new
// incarnation.
func (s *Service) freshLocked(m *member, req *rfc.Request, inc uint32) bool {
	if inc > m.inc {
		return true
	}
	info, ok := s.ep.Peer(req.From)
	return ok && info.LastHeardNs >= req.Arrived
}

// serveJoin adds the sender, at its own address, as a member when this
// node accepts joins (Config.AcceptJoins), and disseminates it.
func (s *Service) serveJoin(req *rfc.Request, _ *wire.Params) wire.Errno {
	inc, ok := senderInc(req, jnParamInc)
	if !ok {
		return wire.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.Closed {
		return wire.ECLOSED
	}
	if !s.cfg.AcceptJoins {
		s.stats.nonMember.Add(1)
		return wire.EPERM
	}
	if m := s.mu.members[req.From]; m != nil {
		if s.freshLocked(m, req, inc) {
			s.observeLocked(m, inc, req.Arrived)
		}
		return wire.OK
	}
	if s.joinedLocked(req.From, req.Src, inc, req.Arrived) == nil {
		return wire.ENOSPC
	}
	return wire.OK
}
