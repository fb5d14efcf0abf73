package heartbeat

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Dissemination. Membership changes (a member declared dead, a member
// alive again or at a higher incarnation, this node's own refutation)
// ride on heartbeat requests and replies as a bytes parameter of packed
// updates. Each update is sent at most Config.Retransmit·⌈log2(N+2)⌉
// times, newest first, so a change reaches every member in O(log N)
// intervals while a member's traffic stays independent of N.
//
// Update layout (big-endian), one after another in the parameter:
//
//	0  u8  state (State)
//	1  u32 incarnation the state refers to
//	5  u32 node id (0: unknown)
//	9  u16 port
//	11 u8  address length (4 or 16)
//	12     address
const (
	updOffState   = 0
	updOffInc     = 1
	updOffNode    = 5
	updOffPort    = 9
	updOffAddrLen = 11
	updOffAddr    = 12
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

// enqueueLocked queues an update for dissemination. A newer update about
// the same address replaces the queued one; the queue holds at most one
// update per member plus one about this node.
func (s *Service) enqueueLocked(addr netip.AddrPort, node uint32, st State, inc uint32) {
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
	s.mu.bcast = append(q, update{addr: addr, node: node, state: st, inc: inc})
}

// takeUpdates appends to dst the queued updates that fit room bytes (at
// most piggybackMax), newest first, and counts each as sent once; an
// update sent its retransmit limit leaves the queue.
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
	taken := 0
	for i := len(q) - 1; i >= 0 && taken < piggybackMax && room >= updMax; i-- {
		n := len(dst)
		dst = putUpdate(dst, &q[i])
		room -= len(dst) - n
		taken++
		q[i].sends++
	}
	kept := q[:0]
	for _, u := range q {
		if u.sends < limit {
			kept = append(kept, u)
		}
	}
	s.mu.bcast = kept
	s.stats.updatesSent.Add(uint64(taken))
	return dst
}

// applyUpdatesLocked applies the updates member from sent (from its own
// address). What a non-member says is never applied. An update about
// this node that suspects or buries it at or above its incarnation is
// refuted: the incarnation is raised and the new one disseminated. A
// death heard about a member is never applied on hearsay: a member this
// node heard from itself within the last Interval is probed at once; any
// other alive member becomes suspect at once and gets its suspect rounds
// here (a direct probe and indirect ones), so it is declared dead only on
// this node's own evidence.
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
			cur := s.ep.Incarnation()
			if u.state != StateAlive && u.inc >= cur && u.inc != maxInc {
				s.ep.SetIncarnation(u.inc + 1)
				s.stats.refutations.Add(1)
				s.enqueueLocked(self, selfNode, StateAlive, u.inc+1)
				s.mu.selfRefuted = true
			}
			continue
		}
		m := s.mu.members[u.addr]
		if m == nil && u.node != 0 {
			m = s.lookupLocked(netip.AddrPort{}, u.node)
		}
		if m == nil || m.removed || m == from && u.state != StateAlive {
			continue // not a member here; a member's word about itself is its heartbeat
		}
		if m.node == 0 {
			m.node = u.node
		}
		switch u.state {
		case StateAlive:
			switch m.state {
			case StateDead:
				if u.inc > m.deadInc && !m.marking {
					m.inc = max(m.inc, u.inc)
					s.toAliveLocked(m, now) // disseminates the revival
				}
			case StateSuspect:
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
		case StateDead:
			if m.state == StateDead || u.inc < m.inc {
				continue
			}
			if m.heardNs != 0 && now-m.heardNs < int64(s.cfg.Interval) {
				m.probeNow = true
				s.touchLocked(m)
				continue
			}
			m.inc = u.inc
			if m.state == StateAlive {
				// Not dead on hearsay: the teller may have been cut off
				// or stalled itself. Suspect now and open a suspect
				// round at the next tick; dead only if it fails here.
				s.toSuspectLocked(m, now)
				m.rounds = -1
				m.roundEnd = now
			}
			s.touchLocked(m)
		}
	}
}

// touchLocked hands m to the probe loop at its next tick: its state
// changed outside the loop, or it must be probed at once.
func (s *Service) touchLocked(m *member) {
	if !m.touched {
		m.touched = true
		s.mu.touched = append(s.mu.touched, m)
	}
}
