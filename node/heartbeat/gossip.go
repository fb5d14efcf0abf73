package heartbeat

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Dissemination. Membership changes (a member suspected, a member
// declared dead, a member alive again or at a higher incarnation, this
// node's own refutation) ride on heartbeat requests and replies as a
// bytes parameter of packed updates, and, while any wait, on CallGossip
// datagrams to Config.GossipNodes random members every GossipInterval.
// Each update is sent at most Config.Retransmit·⌈log2(N+2)⌉ times, least
// sent first, so a change reaches every member in O(log N) intervals
// while a member's traffic stays independent of N.
//
// Update layout (big-endian), one after another in the parameter:
//
//	0  u8  state (State)
//	1  u32 incarnation the state refers to
//	5  u32 node id (0: unknown)
//	9  u32 observer: the member whose verdict it is (observerID)
//	13 u16 port
//	15 u8  address length (4 or 16)
//	16     address
const (
	updOffState   = 0
	updOffInc     = 1
	updOffNode    = 5
	updOffFrom    = 9
	updOffPort    = 13
	updOffAddrLen = 15
	updOffAddr    = 16
	updHead       = updOffAddr
	updMax        = updHead + 16 // an IPv6 entry

	// piggybackMax bounds the updates one heartbeat request carries.
	piggybackMax = 8
	// piggybackBuf holds piggybackMax updates of the largest size.
	piggybackBuf = piggybackMax * updMax
)

// update is one membership change waiting to be sent.
type update struct {
	addr  netip.AddrPort
	node  uint32
	from  uint32 // observer (observerID) whose verdict a suspicion or death is
	state State
	inc   uint32
	sends int
}

// putUpdate appends u to b; b must have room for updMax bytes.
func putUpdate(b []byte, u *update) []byte {
	a := u.addr.Addr().Unmap()
	var e [updMax]byte
	e[updOffState] = byte(u.state)
	binary.BigEndian.PutUint32(e[updOffInc:], u.inc)
	binary.BigEndian.PutUint32(e[updOffNode:], u.node)
	binary.BigEndian.PutUint32(e[updOffFrom:], u.from)
	binary.BigEndian.PutUint16(e[updOffPort:], u.addr.Port())
	n := updHead
	if a.Is4() {
		e[updOffAddrLen] = 4
		v := a.As4()
		n += copy(e[updOffAddr:], v[:])
	} else {
		e[updOffAddrLen] = 16
		v := a.As16()
		n += copy(e[updOffAddr:], v[:])
	}
	return append(b, e[:n]...)
}

// nextUpdate decodes the update at the start of b and returns the bytes
// after it; ok is false for a malformed entry.
func nextUpdate(b []byte) (u update, rest []byte, ok bool) {
	if len(b) < updHead {
		return u, nil, false
	}
	n := int(b[updOffAddrLen])
	if (n != 4 && n != 16) || len(b) < updHead+n || State(b[updOffState]) >= stateLimit {
		return u, nil, false
	}
	var a netip.Addr
	if n == 4 {
		a = netip.AddrFrom4([4]byte(b[updOffAddr : updOffAddr+4]))
	} else {
		a = netip.AddrFrom16([16]byte(b[updOffAddr : updOffAddr+16])).Unmap()
	}
	u = update{
		addr:  netip.AddrPortFrom(a, binary.BigEndian.Uint16(b[updOffPort:])),
		node:  binary.BigEndian.Uint32(b[updOffNode:]),
		from:  binary.BigEndian.Uint32(b[updOffFrom:]),
		state: State(b[updOffState]),
		inc:   binary.BigEndian.Uint32(b[updOffInc:]),
	}
	return u, b[updHead+n:], true
}

// retransmitLimitLocked is how many times one update is sent:
// Retransmit·⌈log2(N+2)⌉ for N members.
func (s *Service) retransmitLimitLocked() int {
	return s.cfg.Retransmit * bits.Len(uint(len(s.mu.members)+1))
}

// enqueueLocked queues this node's own update for dissemination (see
// enqueueFromLocked).
func (s *Service) enqueueLocked(addr netip.AddrPort, node uint32, st State, inc uint32) {
	s.enqueueFromLocked(addr, node, st, inc, s.self)
}

// enqueueFromLocked queues an update, the verdict of observer from, for
// dissemination. A newer update about the same address replaces the
// queued one; the queue holds at most one update per member plus one
// about this node.
func (s *Service) enqueueFromLocked(addr netip.AddrPort, node uint32, st State, inc, from uint32) {
	if s.cfg.Retransmit == 0 {
		return
	}
	q := s.mu.bcast
	for i := range q {
		if q[i].addr == addr {
			copy(q[i:], q[i+1:])
			q = q[:len(q)-1]
			break
		}
	}
	if len(q) > s.cfg.MaxMembers {
		copy(q, q[1:]) // the oldest, sent the most, goes
		q = q[:len(q)-1]
	}
	s.mu.bcast = append(q, update{addr: addr, node: node, from: from, state: st, inc: inc})
	s.wakeLoop() // gossiped at the loop's gossip time
}

// takeUpdates appends to dst the queued updates that fit room bytes (at
// most piggybackMax), least sent first and, among those sent as often,
// newest first, and counts each as sent once; an update sent its
// retransmit limit leaves the queue.
func (s *Service) takeUpdates(dst []byte, room int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeUpdatesLocked(dst, room)
}

func (s *Service) takeUpdatesLocked(dst []byte, room int) []byte {
	q := s.mu.bcast
	if len(q) == 0 {
		return dst
	}
	limit := s.retransmitLimitLocked()
	want := min(piggybackMax, room/updMax)
	// One pass, newest first, keeping the want least sent in picked,
	// sorted by sends (among equals the newer first): the cost per
	// datagram is one scan of the queue.
	var picked [piggybackMax]int
	taken := 0
	for i := len(q) - 1; i >= 0 && want > 0; i-- {
		if q[i].sends >= limit {
			continue
		}
		k := taken
		if taken < want {
			taken++
		} else if q[i].sends >= q[picked[taken-1]].sends {
			continue
		} else {
			k = taken - 1
		}
		for k > 0 && q[picked[k-1]].sends > q[i].sends {
			picked[k] = picked[k-1]
			k--
		}
		picked[k] = i
	}
	for _, i := range picked[:taken] {
		dst = putUpdate(dst, &q[i])
		q[i].sends++
	}
	kept := q[:0]
	for _, u := range q {
		if u.sends < limit {
			kept = append(kept, u)
		}
	}
	clear(q[len(kept):])
	s.mu.bcast = kept
	s.stats.updatesSent.Add(uint64(taken))
	return dst
}

// pendingUpdatesLocked reports whether an update waits to be sent.
func (s *Service) pendingUpdatesLocked() bool { return len(s.mu.bcast) > 0 }

// applyUpdatesLocked applies the updates member from sent (from its own
// address). What a non-member says is never applied; neither is a
// member's suspicion or death of itself (its heartbeat speaks for it).
//
//   - suspect or dead about this node at or above its incarnation: refuted
//     by raising the incarnation and disseminating alive at the new one.
//   - suspect X@i, i at or above what this node holds for X: X becomes
//     suspect here too (its own timer, see suspectHeardLocked); from an
//     observer not yet counted for this suspicion it is a confirmation,
//     which shrinks the timer and is passed on.
//   - dead X@i: a suspicion confirmed by every observer it could need: X
//     is suspect here with the shortest timeout from when this node began
//     to suspect it. Dead only when that timer expires here, so a stale
//     claim (from a member that was paused or cut off) is refuted first
//     by a member that is alive and reachable.
//   - alive X@i above the incarnation X is suspect at: alive again (but a
//     suspicion made before any incarnation of X was heard adopts i and
//     stays); above
//     the one X is dead at: X is probed at once, alive again on its reply
//     (revivalHeardLocked).
//
// A suspicion or death of an alive member heard from directly within the
// last Interval is not applied: the member is probed at once instead
// (in a small cluster every member is heard every Interval, so there
// each member judges on its own probes).
func (s *Service) applyUpdatesLocked(from *member, b []byte, now int64) {
	self, selfNode := s.ep.Addr(), s.ep.NodeID()
	for len(b) > 0 {
		u, rest, ok := nextUpdate(b)
		if !ok {
			s.stats.badUpdates.Add(1)
			return
		}
		b = rest
		s.stats.updatesHeard.Add(1)
		if u.addr == self || (u.node != 0 && u.node == selfNode) {
			if u.state != StateAlive {
				s.refuteLocked(u.inc)
			}
			continue
		}
		m := s.mu.members[u.addr]
		if m == nil && u.node != 0 {
			m = s.lookupLocked(netip.AddrPort{}, u.node)
		}
		if m == nil && u.state == StateAlive {
			// A member that joined elsewhere (Config.AcceptJoins),
			// without the node id the update names: that is the
			// sender's word, not the member's (below).
			s.joinedLocked(u.addr, 0, u.inc, now)
			continue
		}
		if m == nil || m.removed || m == from && u.state != StateAlive {
			continue // not a member here; a member's word about itself is its heartbeat
		}
		// m's node id is m's own word, never an update's
		// (adoptNodeLocked).
		switch u.state {
		case StateAlive:
			switch m.state {
			case StateDead:
				s.revivalHeardLocked(m, u.inc, now)
			case StateSuspect:
				if m.inc == 0 && u.inc > 0 {
					// Suspected here before any incarnation of m was
					// heard (a node that just started): the suspicion is
					// about m as it is, as one heard at 0 is
					// (suspectHeardLocked). Another's word of m alive
					// at an incarnation may be older than this node's
					// failed probes, so it is adopted and the suspicion
					// kept and passed on at it, for m to refute; cleared
					// by it, a restarted observer could not declare a
					// member that crashed as it started dead within
					// DetectBoundAt.
					m.inc = u.inc
					s.enqueueLocked(m.addr, m.node, StateSuspect, m.inc)
					s.touchLocked(m)
					continue
				}
				if u.inc > m.inc {
					m.inc = u.inc
					s.toAliveLocked(m, now)
					s.enqueueLocked(m.addr, m.node, StateAlive, m.inc)
				}
			default:
				if u.inc > m.inc {
					m.inc = u.inc
					s.enqueueLocked(m.addr, m.node, StateAlive, m.inc)
				}
			}
		case StateSuspect, StateDead:
			s.suspectHeardLocked(m, u, now)
		}
	}
}

// revivalHeardLocked applies alive m@inc heard from another member while
// m is dead here. The word is not taken: anyone holding the key (in
// checksum mode, anyone) can send it, and a member's news may be stale
// (m restarted and crashed again since). Above the death, it makes the
// reprobe loop probe m at once (at most once per Interval per member, so
// that news repeated or forged costs one probe per Interval): the reply,
// m's own word, revives it here (observeLocked, reviveUnrefutedLocked)
// and this node passes the revival on; no reply, and m stays dead. It is
// not passed on unchecked.
func (s *Service) revivalHeardLocked(m *member, inc uint32, now int64) {
	if inc <= m.deadInc || m.checkAt != 0 && now-m.checkAt < int64(s.cfg.Interval) {
		return
	}
	select {
	case s.checkQ <- m.addr:
		m.checkAt = now
	default:
		// The queue is full: the reprobe loop reaches m in its round.
	}
}

// suspectHeardLocked applies a suspicion or a death of m (update u)
// heard from another member.
func (s *Service) suspectHeardLocked(m *member, u update, now int64) {
	if u.inc == 0 {
		// The observer never heard an incarnation of m (in a large
		// cluster a member may not have exchanged a datagram with m
		// before its probe of m failed): the claim is about m as it is,
		// and is held and passed on at the incarnation known here, which
		// m can refute. Dropped as stale, it would reach only the members
		// that know no incarnation of m either.
		u.inc = m.inc
	}
	if m.state == StateDead || u.inc < m.inc {
		return // final here, or refuted already
	}
	heard := s.lastHeardLocked(m)
	if m.state == StateAlive && heard != 0 && now-heard < int64(s.cfg.Interval) {
		// Heard from it within the Interval: not suspected on another's
		// word; it is probed at once, and suspected here only if this
		// node's own indirect round fails.
		m.probeNow = true
		s.touchLocked(m)
		return
	}
	if m.state == StateSuspect && heard > m.since {
		// Heard from it since it became suspect here: alive at the probe
		// loop's next step (observeLocked); no confirmation counted.
		s.touchLocked(m)
		return
	}
	if m.state == StateAlive || u.inc > m.inc {
		m.inc = u.inc
		s.toSuspectLocked(m, now)
		m.susp = suspicion{start: now, health: int(s.stats.health.Load())}
		if u.from != 0 && u.from != s.self {
			m.susp.confirmers[0] = u.from // the first observer is the suspicion, not a confirmation
			m.susp.n = 1
		}
		if u.state == StateDead {
			m.susp.conf = maxConfirm
		}
		// Probed at once, as when heard recently: the probe tells it
		// that it is suspected, a live member answers within a round
		// trip, which clears the suspicion here long before the timer,
		// whoever made the claim; and only a failed probe of this
		// node's own lets the timer end in a death here
		// (suspicion.verified).
		m.probeNow = true
		s.enqueueFromLocked(m.addr, m.node, StateSuspect, m.inc, u.from)
		s.mu.gossipNow = true // passed on at once (gossip)
		s.touchLocked(m)
		return
	}
	// Suspect here already at this incarnation.
	if u.state == StateDead {
		if m.susp.conf < maxConfirm {
			m.susp.conf = maxConfirm
			s.touchLocked(m)
		}
		return
	}
	if u.from != s.self && m.susp.confirm(u.from) {
		s.enqueueFromLocked(m.addr, m.node, StateSuspect, m.inc, u.from)
		s.touchLocked(m)
	}
}

// lastHeardLocked is the engine clock of the last sign of life from m:
// the later of what the probe loop has folded in (m.heardNs) and the
// engine's last datagram from it, which the loop folds in only when it
// steps m.
func (s *Service) lastHeardLocked(m *member) int64 {
	heard := m.heardNs
	if info, ok := s.ep.Peer(m.addr); ok && info.LastHeardNs > heard {
		heard = info.LastHeardNs
	}
	return heard
}

// touchLocked hands m to the probe loop at its next tick: its state
// changed outside the loop, or it must be probed at once.
func (s *Service) touchLocked(m *member) {
	if !m.touched {
		m.touched = true
		s.mu.touched = append(s.mu.touched, m)
		s.wakeLoop()
	}
}

// wakeLoop rouses the probe loop if it sleeps past its next Tick, so
// that the work just handed to it (a member touched, an update to
// gossip, a relay asked for) is done at its next Tick, as if it had
// ticked all along. The caller has made the work visible first: the
// loop sets asleep before it looks for work (prober.plan), so that one
// of the two sees the other. It never blocks.
func (s *Service) wakeLoop() {
	if s.asleep.CompareAndSwap(true, false) {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
