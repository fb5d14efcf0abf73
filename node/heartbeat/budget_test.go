package heartbeat

import (
	"net/netip"
	"testing"

	"fastcall/rfc"
)

// starvedSends is what the probe loop has sent so far: probes, indirect
// requests, relays and gossip datagrams.
func starvedSends(s *Service) uint64 {
	st := s.Stats()
	return st.Probes + st.IndirectSent + st.Relayed + st.GossipSent
}

// TestStarvedMemberBoundsWork: a member starved of CPU (one tick in ten
// comes Interval/2 late, so its local health climbs to the top), whose
// probes of 24 members all fail (as when its replies run late) and which
// other members ask for an indirect probe every tick, sends at most the
// schedule's probes plus Budget/(1+health) datagrams per Interval once
// its health is up: the work its failures cause does not grow with them.
// Before the budget it probed each of its suspects every Interval (each
// probe Interval·(1+health) long) and ran every relay asked for up to
// RelayQueue: 360 datagrams in the measured 45 Intervals, 8.0 per
// Interval, against a bound of 5.2 (after: 145, 3.2).
func TestStarvedMemberBoundsWork(t *testing.T) {
	s, pr, _ := stallProber(t)
	s.relayQ = make(chan relayJob, s.cfg.RelayQueue)
	// The suspects stay suspect for the whole test: each is probed
	// every Interval.
	s.cfg.SuspicionMin = 20 * s.cfg.Interval
	// Addresses nothing answers on, all held open until each is taken
	// (a port closed at once could be handed out again).
	var gone []*rfc.Endpoint
	for i := range 23 {
		gone = append(gone, newEndpoint(t, uint32(10+i), nil))
	}
	for _, g := range gone {
		g.Close()
		if err := s.AddMember(g.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	iv, tick := int64(s.cfg.Interval), int64(s.cfg.Tick)
	t0 := s.ep.Now()
	var addrs []netip.AddrPort
	s.mu.Lock()
	for _, m := range s.mu.order {
		m.heardNs = t0 - 2*iv
		m.fails = s.cfg.SuspectAfter // its last probe failed
		m.loopSince = m.since
		pr.activate(m)
		addrs = append(addrs, m.addr)
	}
	s.mu.Unlock()
	pr.lastNs, pr.onTime, pr.lagAt = t0, t0, t0
	now := t0
	// run drives cycles of ten ticks, the last Interval/2 late, asking
	// for one relay at each, and returns the engine time reached.
	starved := true
	run := func(cycles int) int64 {
		for c := range cycles {
			for i := range 10 {
				now += tick
				if i == 9 && starved {
					now += iv / 2
				}
				select {
				case s.relayQ <- relayJob{from: addrs[0], seq: uint64(c*10 + i + 1), target: addrs[1+(c*10+i)%(len(addrs)-1)]}:
				default:
				}
				pr.tick(now)
			}
		}
		return now
	}
	run(10) // the health climbs
	if pr.health != healthMax {
		t.Fatalf("health %d after ten cycles with a late tick each, want %d", pr.health, healthMax)
	}
	from, sent, susp := now, starvedSends(s), s.Stats().Suspects
	end := run(30)
	n := starvedSends(s) - sent
	intervals := float64(end-from) / float64(iv)
	per := float64(n) / intervals
	bound := float64(s.cfg.ProbesPerInterval) + float64(s.cfg.Budget)/float64((1+healthMax)*(1+healthMax))
	// One bank of credit may be spent on top (bank).
	if limit := bound*intervals + float64(s.cfg.Budget); float64(n) > limit {
		t.Errorf("starved member sent %d datagrams in %.1f Intervals (%.1f per Interval), want at most %.0f (%.1f per Interval and one bank)",
			n, intervals, per, limit, bound)
	}
	if st := s.Stats(); st.Deferred == 0 {
		t.Errorf("nothing deferred: the budget was never reached (%+v)", st)
	}
	// Its verdicts are held while its own ticks run late.
	if st := s.Stats(); st.Suspects != susp || st.Deaths != 0 {
		t.Errorf("starved member suspected %d members on its own evidence and declared %d dead, want none",
			st.Suspects-susp, st.Deaths)
	}
	t.Logf("%d datagrams in %.1f Intervals: %.1f per Interval (bound %.1f)", n, intervals, per, bound)

	// Fed again (every tick on time), it is back at health 0 within
	// healthMax Intervals and does the work at the full budget.
	// The suspicions it makes once fed again count from here: the rounds
	// held open while it starved end as soon as the hold does.
	fedSusp := s.Stats().Suspects
	starved = false
	run(10)
	if pr.health != 0 {
		t.Fatalf("health %d after ten cycles on time, want 0", pr.health)
	}
	from, sent = now, starvedSends(s)
	end = run(20)
	n = starvedSends(s) - sent
	intervals = float64(end-from) / float64(iv)
	if per := float64(n) / intervals; per < float64(s.cfg.Budget)/2 {
		t.Errorf("fed again: %d datagrams in %.1f Intervals (%.1f per Interval), want at least half the budget, %d",
			n, intervals, per, s.cfg.Budget/2)
	}
	if st := s.Stats(); st.Suspects == fedSusp {
		t.Errorf("fed again, it suspected none of the members that never answer")
	}
}

// TestRefutationNotHeldForRounds: a refutation is gossiped at once even
// while indirect rounds wait for the budget (a round's worth is kept
// from other work then, spend): the members that heard the claim may
// run timers as short as SuspicionMin. With every datagram of the
// budget given to four waiting rounds first, the refutation went out
// 1.8 Intervals after the claim.
func TestRefutationNotHeldForRounds(t *testing.T) {
	s, pr, _ := stallProber(t)
	for i := range 3 {
		g := newEndpoint(t, uint32(20+i), nil)
		g.Close()
		if err := s.AddMember(g.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	iv, tick := int64(s.cfg.Interval), int64(s.cfg.Tick)
	teller := addTeller(t, s)
	t0 := s.ep.Now()
	s.mu.Lock()
	for _, m := range s.mu.order {
		if m == teller {
			continue
		}
		m.heardNs = t0 - 2*iv
		m.fails = s.cfg.SuspectAfter // each opens a round
		m.loopSince = m.since
		pr.activate(m)
	}
	s.mu.Unlock()
	pr.lastNs, pr.onTime, pr.lagAt = t0, t0, t0
	pr.credit = 0 // the rounds wait
	pr.gossipAt = t0 + 10*iv
	now := t0 + tick
	pr.tick(now)
	u := update{addr: s.ep.Addr(), node: s.ep.NodeID(), from: 7, state: StateSuspect, inc: s.ep.Incarnation()}
	s.mu.Lock()
	s.applyUpdatesLocked(teller, putUpdate(nil, &u), now)
	s.mu.Unlock()
	at := now
	for now-at < 2*iv && s.Stats().GossipSent == 0 {
		now += tick
		pr.tick(now)
	}
	if took := now - at; s.Stats().GossipSent == 0 || took > int64(s.cfg.SuspicionMin) {
		t.Fatalf("refutation gossiped %.2f Intervals after the claim (sent %d), want within SuspicionMin (%.2f)",
			float64(took)/float64(iv), s.Stats().GossipSent, float64(s.cfg.SuspicionMin)/float64(iv))
	}
}
