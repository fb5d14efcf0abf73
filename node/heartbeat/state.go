package heartbeat

import (
	"time"
)

// State changes. Every function here runs with Service.mu held. A member
// leaves alive and suspect only in the probe loop; it becomes alive again
// wherever a sign of life is seen (a handler, the probe loop, the reprobe
// loop).

// observeLocked folds a sign of life from m into its state: a datagram,
// a probe reply or an indirect acknowledgement carrying incarnation inc,
// seen at engine clock at. A suspect member heard after it became suspect
// is alive again; a dead member is alive again only with an incarnation
// above the one it was declared dead at, and only once its death is
// complete (the engine's MarkDead done and EventDead queued: see
// finishDeath), so that its events follow its states in order.
func (s *Service) observeLocked(m *member, inc uint32, at int64) {
	if at > m.heardNs {
		m.heardNs = at
	}
	raised := inc > m.inc
	news := raised && m.inc != 0 // not the first incarnation heard of it
	if raised {
		m.inc = inc
	}
	switch m.state {
	case StateAlive:
		if news {
			// A new incarnation heard from the member itself (a
			// refutation, a restart): passed on, as an alive update
			// carrying it would be.
			s.enqueueLocked(m.addr, m.node, StateAlive, m.inc)
		}
	case StateSuspect:
		if raised {
			s.toAliveLocked(m, at)
			s.enqueueLocked(m.addr, m.node, StateAlive, m.inc)
		} else if at > m.since {
			s.toAliveLocked(m, at)
		}
	case StateDead:
		if inc > m.deadInc && !m.marking {
			s.toAliveLocked(m, at)
		}
	}
}

func (s *Service) toAliveLocked(m *member, now int64) {
	old := m.state
	if old == StateDead {
		m.tellDied = true
	}
	m.state = StateAlive
	m.since = now
	m.ackSeq = 0
	m.susp = suspicion{}
	m.syncRFC = true
	s.touchLocked(m)
	if old == StateDead {
		s.enqueueLocked(m.addr, m.node, StateAlive, m.inc)
	}
	s.stats.rejoin.Add(1)
	s.log.Info("heartbeat: member alive", "member", m.addr.String(), "node", m.node, "was", old.String(), "incarnation", m.inc)
	s.emitLocked(Event{Kind: EventAlive, Addr: m.addr, Node: m.node, Incarnation: m.inc, AtNs: now})
}

// toSuspectLocked is called by the probe loop, and for a suspicion or a
// death heard from another member (suspectHeardLocked), which hands the
// member to the loop. The caller sets m.susp.
func (s *Service) toSuspectLocked(m *member, now int64) {
	m.state = StateSuspect
	m.since = now
	m.ackSeq = 0
	m.syncRFC = true
	s.stats.suspects.Add(1)
	s.log.Info("heartbeat: member suspect", "member", m.addr.String(), "node", m.node, "incarnation", m.inc)
	s.emitLocked(Event{Kind: EventSuspect, Addr: m.addr, Node: m.node, Incarnation: m.inc, AtNs: now})
}

// toDeadLocked is called by the probe loop only, when a suspicion timer
// expires. The EventDead is
// returned, not queued: the probe loop queues it (finishDeath) after the
// engine's MarkDead has failed the calls parked on the member, so that a
// listener never sees the event before the calls fail. Until then the
// member is marking and stays dead whatever is heard from it.
func (s *Service) toDeadLocked(m *member, now int64) Event {
	m.state = StateDead
	m.marking = true
	m.deadInc = m.inc
	m.since = now
	m.ackSeq = 0
	m.syncRFC = true
	s.enqueueLocked(m.addr, m.node, StateDead, m.deadInc)
	s.stats.deaths.Add(1)
	s.log.Warn("heartbeat: member declared dead", "member", m.addr.String(), "node", m.node, "incarnation", m.deadInc)
	return Event{Kind: EventDead, Addr: m.addr, Node: m.node, Incarnation: m.deadInc, AtNs: now}
}

// finishDeath completes a death toDeadLocked began, once the engine's
// MarkDead has returned: it queues dead (unless the member was removed
// meanwhile: EventRemoved has said it all) and then applies a revival
// heard during the marking, so EventAlive follows EventDead.
func (s *Service) finishDeath(m *member, dead Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.marking = false
	if m.removed {
		return
	}
	s.emitLocked(dead)
	if m.state == StateDead && m.inc > m.deadInc {
		s.toAliveLocked(m, s.ep.Now())
	}
}

// selfNewsLocked handles what member m says about this node (claims of
// non-members are never applied). A suspicion or a death at or above
// this node's incarnation is refuted by raising the incarnation above it;
// a raise past the top incarnation is not made (see maxInc). Each
// suspicion and each death is reported once per member, as
// EventSuspectedBy or EventDeclaredDeadBy; a death is reported even when
// already refuted (this node rejoined before it heard), because the
// member has given up on everything in flight with this node. The log
// line of a death is rate-limited (newsLogEvery).
func (s *Service) selfNewsLocked(m *member, v view, now int64) {
	died := v.died
	if v.state == StateDead && v.inc > died {
		died = v.inc
	}
	suspect := uint32(0)
	if v.state == StateSuspect {
		suspect = v.inc
	}
	if died == 0 && suspect == 0 {
		return
	}
	top := died
	if suspect > top {
		top = suspect
	}
	cur := s.ep.Incarnation()
	s.refuteLocked(top)
	if suspect < cur {
		suspect = 0 // an old suspicion, refuted already
	}
	if died <= m.heardDie {
		died = 0
	} else {
		m.heardDie = died
	}
	if suspect <= m.heardSus || suspect < died {
		suspect = 0
	} else {
		m.heardSus = suspect
	}
	if died != 0 {
		if s.mu.newsLogAt == 0 || now-s.mu.newsLogAt >= int64(newsLogEvery) {
			s.log.Warn("heartbeat: this node was declared dead", "by", m.addr.String(), "incarnation", died,
				"now", s.ep.Incarnation(), "unlogged", s.mu.newsUnlogged)
			s.mu.newsLogAt, s.mu.newsUnlogged = now, 0
		} else {
			s.mu.newsUnlogged++
		}
		s.emitLocked(Event{Kind: EventDeclaredDeadBy, Addr: m.addr, Node: m.node, Incarnation: died, AtNs: now})
	}
	if suspect != 0 {
		s.emitLocked(Event{Kind: EventSuspectedBy, Addr: m.addr, Node: m.node, Incarnation: suspect, AtNs: now})
	}
}

// maxInc is the top incarnation. The engine's incarnation only rises,
// so a node there cannot refute by raising it: a member that declared it
// dead there takes it back on the reply to a probe that told it of its
// death (reviveUnrefutedLocked).
const maxInc = ^uint32(0)

// refuteReserve is the top band of incarnations that a claim about this
// node, below the band, cannot make it raise into: a claim at
// maxInc-refuteReserve or above, of a node below that, is not refuted by
// a raise. Raising to meet a claim just below 2^32-1 would leave this
// node no raise for any later claim; a claim just below the band leaves
// it refuteReserve raises, one per claim. An honest claim names an
// incarnation some member heard from this node: its own, or that of a
// process that ran before it on its address (a restart draws a new
// random incarnation, which may be lower, so such claims are refuted
// with a raise wherever they fall below the band; they fall in it once
// in 2^32/refuteReserve restarts). A claim in the band is still
// answered: every member that holds a suspicion probes this node and
// clears it on the reply, and a death is taken back on the reply to a
// reprobe (reviveUnrefutedLocked).
const refuteReserve = 1 << 20

// refuteInc returns the incarnation that refutes a suspicion or a death
// of this node at claim, this node being at cur: claim+1, or the top
// itself for a claim at the top (a member that declared it dead there
// takes it back when it answers at the top, reviveUnrefutedLocked); ok is
// false when there is nothing to refute (claim below cur), no raise left
// (cur at the top), or the claim is in the top band (refuteReserve) and
// cur below it.
func refuteInc(claim, cur uint32) (inc uint32, ok bool) {
	const band = maxInc - refuteReserve
	switch {
	case claim < cur || cur == maxInc:
		return 0, false
	case claim >= band && cur < band:
		return 0, false
	case claim == maxInc:
		return maxInc, true
	}
	return claim + 1, true
}

// unrefuted reports whether this node, at incarnation cur, cannot refute
// a claim at claim by a raise (refuteInc): it is at the top, or the claim
// is in the top band (refuteReserve) and cur below it.
func unrefuted(claim, cur uint32) bool {
	_, ok := refuteInc(claim, cur)
	return !ok && claim >= cur
}

// refuteLocked refutes a suspicion or a death of this node at claim,
// if refuteInc allows: it raises the incarnation and disseminates alive
// at the new one, gossiped at the next tick. The probe loop's health
// rises on it (prober.gauge), at most to claimHealthMax.
func (s *Service) refuteLocked(claim uint32) {
	inc, ok := refuteInc(claim, s.ep.Incarnation())
	if !ok {
		return
	}
	s.ep.SetIncarnation(inc)
	s.stats.refutations.Add(1)
	s.enqueueLocked(s.ep.Addr(), s.ep.NodeID(), StateAlive, inc)
	s.mu.selfRefuted = true
	s.mu.gossipNow = true
	s.wakeLoop()
}

// newsLogEvery is the least time between two log lines about this node
// being declared dead; the lines left out are counted in the next one.
const newsLogEvery = time.Second

// reviveUnrefutedLocked revives a dead member m that answered a probe
// carrying its death, view v, with incarnation inc, when it could not
// raise above that death (unrefuted): it was declared dead at the top
// incarnation and answers at the top, or the death is in the top band
// (refuteReserve) and it is below it. Answering a probe that tells
// of its death is what a raise proves (the member has heard of the death
// and given up what it held), and a raise is refused there.
func (s *Service) reviveUnrefutedLocked(m *member, v view, inc uint32, now int64) {
	if m.state == StateDead && !m.marking && v.state == StateDead && v.inc == m.deadInc && unrefuted(m.deadInc, inc) {
		s.toAliveLocked(m, now)
	}
}
