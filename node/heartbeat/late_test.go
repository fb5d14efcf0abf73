package heartbeat

import (
	"fmt"
	"net/netip"
	"testing"
	"testing/cryptotest"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
)

// simCluster starts a service on the simulated network net for each
// address, with members[i] as member i's member list, and returns the
// nodes; stop closes them all.
func simCluster(t *testing.T, net *simnet.Network, cfg Config, addrs []netip.AddrPort, members [][]netip.AddrPort) (nodes []*node, stop func()) {
	t.Helper()
	for i, a := range addrs {
		rc := rfc.DefaultConfig()
		rc.NodeID = uint32(i + 1)
		rc.Logger = quiet
		ep, err := rfc.OpenTransport(rc, net.Attach(a))
		if err != nil {
			t.Fatal(err)
		}
		svc, err := Start(ep, cfg, members[i])
		if err != nil {
			t.Fatal(err)
		}
		n := &node{ep: ep, svc: svc, log: new(eventLog)}
		svc.OnEvent(n.log.add)
		if err := ep.Start(); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	return nodes, func() {
		for _, n := range nodes {
			n.svc.Close()
			n.ep.Close()
		}
	}
}

// TestLateReplyIsSignOfLife: the reply to a probe that comes after its
// ProbeTimeout but within the Interval is a sign of life. A probes X over
// a link whose round trip (60 ms) is longer than ProbeTimeout (50 ms) and
// shorter than the Interval (100 ms); B, A's only helper, is cut off from
// X, so B suspects and declares X dead, rightly from where it stands, and
// its word reaches A. No member gossips (updates ride on heartbeats
// only), so what A hears from X is the replies to its probes. A must
// never declare X dead: X answers every probe, and a suspicion at A is
// cleared by the next reply. (Sim Heartbeat seed 700035 and MasterWorker
// seed 500012 were such deaths: a retransmitted probe's reply came a few
// milliseconds after the probe's deadline, was not counted, and a
// suspicion from a member cut off from the target ran out first.)
func TestLateReplyIsSignOfLife(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, addrs := simNet(t, 1, nil, 3)
		a, b, x := addrs[0], addrs[1], addrs[2]
		slow := simnet.Faults{Delay: simnet.Dist{Base: 30 * time.Millisecond}}
		net.SetFaults(a, x, slow)
		net.SetFaults(x, a, slow)
		net.Cut(b, x)
		net.Cut(x, b)
		cfg := DefaultConfig().WithInterval(100 * time.Millisecond)
		cfg.SuspicionMin = 2 * cfg.Interval
		cfg.Logger = quiet
		nodes, stop := simCluster(t, net, cfg, []netip.AddrPort{a, b, x},
			[][]netip.AddrPort{{b, x}, {a, x}, nil})
		defer stop()
		time.Sleep(40 * cfg.Interval)
		synctest.Wait()
		na, nb := nodes[0], nodes[1]
		if nb.log.count(EventDead, x) == 0 {
			t.Errorf("B, cut off from X, never declared it dead: the scenario did not run")
		}
		if st := na.svc.Stats(); st.ProbeFails == 0 {
			t.Errorf("none of A's probes failed (%d probes): the link is not slower than ProbeTimeout", st.Probes)
		}
		if d := na.log.count(EventDead, x); d != 0 {
			t.Errorf("A declared X dead %d times; X answered every probe within the Interval", d)
		}
	})
}

// TestHearsayDeathOfReachableMember: a member that hears a suspicion or
// a death of X from another member probes X at once and declares X dead
// only if a probe of its own fails too. B is cut off from X and has no
// helper (IndirectProbes 0), so B suspects X and declares it dead,
// rightly from where it stands, and tells A. A reaches X, but probes it
// only every fourth Interval (ProbesPerInterval 1, four members): on
// B's word alone A's timer would run out before A next probed X. Several
// seeds, so that B's word reaches A at several phases of A's schedule.
// (Sim Heartbeat seed 900029: a member declared a reachable member dead
// 30 ms after a death heard from a member cut off from it, without
// having sent it anything meanwhile.)
func TestHearsayDeathOfReachableMember(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cryptotest.SetGlobalRandom(t, seed)
				net, addrs := simNet(t, seed, nil, 5)
				a, b, x, c, d := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
				net.Cut(b, x)
				net.Cut(x, b)
				cfg := DefaultConfig().WithInterval(100 * time.Millisecond)
				cfg.ProbesPerInterval = 1
				cfg.IndirectProbes = 0
				cfg.Logger = quiet
				// X, C and D keep no member list: they answer probes and
				// send nothing else, so A hears X only in its replies.
				nodes, stop := simCluster(t, net, cfg, addrs,
					[][]netip.AddrPort{{b, x, c, d}, {a, x}, nil, nil, nil})
				defer stop()
				time.Sleep(40 * cfg.Interval)
				synctest.Wait()
				if nodes[1].log.count(EventDead, x) == 0 {
					t.Errorf("B, cut off from X, never declared it dead: the scenario did not run")
				}
				if n := nodes[0].log.count(EventDead, x); n != 0 {
					t.Errorf("A declared X dead %d times on B's word; A reaches X", n)
				}
			})
		})
	}
}

// TestRefutationGossipedAtOnce: a node that refutes a suspicion of
// itself gossips the refutation at the probe loop's next tick, not at
// the next gossip period (which the refutation, raising the local
// health, also stretches): the members that heard the suspicion run
// timers as short as SuspicionMin. (Sim Heartbeat seed 700026: a member
// declared dead 1 ms before its refutation, gossiped 16 ms after it
// heard of the suspicion, arrived.)
func TestRefutationGossipedAtOnce(t *testing.T) {
	s, pr, m := stallProber(t)
	now := s.ep.Now()
	pr.lastNs = now
	pr.gossipAt = now + int64(s.cfg.GossipInterval) // a round just went out
	u := update{addr: s.ep.Addr(), node: s.ep.NodeID(), from: 7, state: StateSuspect, inc: s.ep.Incarnation()}
	s.mu.Lock()
	s.applyUpdatesLocked(m, putUpdate(nil, &u), now)
	s.mu.Unlock()
	if s.Stats().Refutations != 1 {
		t.Fatalf("suspicion of this node not refuted: %+v", s.Stats())
	}
	now += int64(s.cfg.Tick)
	pr.gauge(now)
	pr.gossip(now)
	if st := s.Stats(); st.GossipSent != 1 {
		t.Fatalf("%d gossip datagrams at the tick after the refutation, want 1 (%+v)", st.GossipSent, st)
	}
	// The next round keeps its time: no second datagram at once.
	now += int64(s.cfg.Tick)
	pr.gauge(now)
	pr.gossip(now)
	if st := s.Stats(); st.GossipSent != 1 {
		t.Fatalf("%d gossip datagrams before the gossip period, want 1", st.GossipSent)
	}
}

// TestSuspicionGossipedAtOnce: a suspicion new here is passed on by
// gossip at the probe loop's next tick, not at the next gossip period,
// so that it reaches every member in a few link delays and their timers
// start sooner (detection by every member at N=1000, docs/HEARTBEAT.md,
// Measured). A confirmation of a suspicion held already waits for the
// period.
func TestSuspicionGossipedAtOnce(t *testing.T) {
	s, pr, m := stallProber(t)
	from := addTeller(t, s)
	now := s.ep.Now()
	pr.lastNs = now
	pr.gossipAt = now + int64(s.cfg.GossipInterval) // a round just went out
	hear := func(observer uint32) {
		u := update{addr: m.addr, state: StateSuspect, from: observer}
		s.mu.Lock()
		s.applyUpdatesLocked(from, putUpdate(nil, &u), now)
		s.mu.Unlock()
		now += int64(s.cfg.Tick)
		pr.gauge(now)
		pr.gossip(now)
	}
	hear(7)
	if st := stateOf(s, m.addr); st != StateSuspect {
		t.Fatalf("member %v after a suspicion heard, want suspect", st)
	}
	sent := s.Stats().GossipSent
	if sent == 0 {
		t.Fatalf("no gossip datagram at the tick after a new suspicion (%+v)", s.Stats())
	}
	hear(8)
	if st := s.Stats(); st.GossipSent != sent {
		t.Fatalf("%d gossip datagrams after a confirmation, before the gossip period, want %d", st.GossipSent, sent)
	}
}

// TestSuspicionOfUnknownIncarnation: a suspicion or a death from an
// observer that never heard an incarnation of the member (0 on the wire:
// in a large cluster a member may not have exchanged a datagram with the
// member before its probe failed) is held at the incarnation known here,
// not dropped as older than it, and passed on at that incarnation, which
// the member can refute. (Sim Scale at N=1000: about half the members
// knew the crashed member's incarnation and ignored the suspicions of the
// other half; one of them declared it dead 16 intervals after the crash.)
func TestSuspicionOfUnknownIncarnation(t *testing.T) {
	s, _, m := stallProber(t)
	from := addTeller(t, s)
	now := s.ep.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m.inc = 77
	for _, st := range []State{StateSuspect, StateDead} {
		s.mu.bcast = nil
		u := update{addr: m.addr, state: st, inc: 0, from: 7}
		s.applyUpdatesLocked(from, putUpdate(nil, &u), now)
		if m.state != StateSuspect || m.inc != 77 {
			t.Fatalf("%v of incarnation 0 heard: member %v at %d, want suspect at 77", st, m.state, m.inc)
		}
		if len(s.mu.bcast) != 1 || s.mu.bcast[0].inc != 77 || s.mu.bcast[0].state != StateSuspect {
			t.Fatalf("%v of incarnation 0 heard: queued %+v, want a suspicion at 77", st, s.mu.bcast)
		}
		s.toAliveLocked(m, now)
	}
}

// TestSuspectAfterRevivalProbes: a member dead here that is revived and
// then suspected on hearsay before the probe loop steps it is probed in
// the network: the engine's dead mark is lifted, not left to fail the
// probe at once (a suspicion heard ends in a death only once a probe of
// this node's own fails, so a probe failed by the engine alone kept the
// member suspect forever: sim Heartbeat seed 1500053, a crashed member
// never declared dead by two members).
func TestSuspectAfterRevivalProbes(t *testing.T) {
	s, pr, m := stallProber(t)
	from := addTeller(t, s)
	now := s.ep.Now()
	s.mu.Lock()
	m.inc = 5
	dead := s.toDeadLocked(m, now)
	s.mu.Unlock()
	s.ep.MarkDead(m.addr)
	s.finishDeath(m, dead)
	s.mu.Lock()
	s.observeLocked(m, 6, now)   // its own datagram at a higher incarnation
	now += int64(s.cfg.Interval) // not heard since: a suspicion heard is taken
	u := update{addr: m.addr, state: StateSuspect, inc: 6, from: 7}
	s.applyUpdatesLocked(from, putUpdate(nil, &u), now)
	st := m.state
	s.mu.Unlock()
	if st != StateSuspect {
		t.Fatalf("member %v after its revival then a suspicion heard, want suspect", st)
	}
	now += int64(s.cfg.Tick)
	pr.lastNs = now
	pr.step(m, now)
	if m.probe == nil {
		t.Fatalf("no probe in flight after the suspicion heard (stats %+v)", s.Stats())
	}
	if p, _ := s.ep.Peer(m.addr); p.State == rfc.PeerDead {
		t.Fatalf("engine still holds the member dead")
	}
}
