package heartbeat

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// Attacks on the membership layer: a non-member on the network, a member
// holding the key, a replayed capture. Each test is an attack that
// worked once and the rule that stops it (docs/HEARTBEAT.md, "Incarnations
// and refutation" and "Security").

// TestAttackNodeIDIsNoSignOfLife: a non-member whose header carries a
// dead member's node id (readable on any members page) sends heartbeats
// from its own address with an incarnation above the death. That is no
// sign of life of the member: it stays dead, and a call to it still fails
// fast.
func TestAttackNodeIDIsNoSignOfLife(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := configAt(2 * time.Second)
		cfg.ReprobeInterval = time.Hour
		teller := s.Listen(2, nil)
		victim := s.Addr() // nothing answers there: crashed
		x := startNode(t, s.Listen(1, nil), cfg, []netip.AddrPort{teller.Addr(), victim})
		sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 4, state: StateDead, inc: 0})
		if !waitFor(10*DetectBound(cfg), func() bool { return stateOf(x.svc, victim) == StateDead }) {
			t.Fatalf("victim %v, want dead", stateOf(x.svc, victim))
		}
		// The attacker: a non-member endpoint with the victim's node id.
		forger := s.Listen(4, nil)
		var ps wire.Params
		for _, inc := range []uint32{1, 1 << 20, maxInc} {
			heartbeatParams(&ps, make([]byte, 256), inc, view{}, nil)
			if err := forger.Call(ctxFor(t, time.Second), x.ep.Addr(), CallHeartbeat, &ps, nil); err != nil {
				t.Fatalf("forged heartbeat: %v", err)
			}
			if info, _ := x.svc.Member(victim); info.State != StateDead || info.Incarnation != 0 {
				t.Fatalf("forged heartbeat at incarnation %d from a non-member with the victim's node id: victim %+v, want dead at 0", inc, info)
			}
		}
		time.Sleep(2 * cfg.Interval) // virtual: the probe loop steps the victim
		if st := stateOf(x.svc, victim); st != StateDead {
			t.Fatalf("victim %v after forged heartbeats", st)
		}
		if err := x.ep.Call(ctxFor(t, time.Second), victim, wire.CallUserBase, nil, nil); errnoOf(err) != wire.ENODEAD {
			t.Fatalf("call to the dead victim: %v, want ENODEAD", err)
		}
	})
}

// TestAttackRelayedDeathView: a member asks a helper for an indirect probe
// of a live member x, with a view that says x is dead. The helper must
// not pass the death on: x would report EventDeclaredDeadBy from the
// helper (a worker cancels every task of that master) and refute a death
// nobody declared. A relayed probe carries at most the asker's suspicion.
func TestAttackRelayedDeathView(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := configAt(2 * time.Second)
		asker := s.Listen(3, nil)
		acks := make(chan bool, 4)
		if err := asker.RegisterCalls([]rfc.CallSpec{{No: CallProbeAck, Name: "probe-ack", Schema: schemaProbeAck,
			Flags: rfc.Idempotent | rfc.OneWay, H: func(req *rfc.Request, _ *wire.Params) wire.Errno {
				acks <- req.Param(pakParamReached).Bool()
				return wire.OK
			}}}); err != nil {
			t.Fatalf("RegisterCalls: %v", err)
		}
		xep, hep := s.Listen(1, nil), s.Listen(2, nil)
		x := startNode(t, xep, cfg, []netip.AddrPort{hep.Addr()})
		helper := startNode(t, hep, cfg, []netip.AddrPort{xep.Addr(), asker.Addr()})
		inc := xep.Incarnation()
		// A state past the three is refused (EINVAL, TestAttackWideParams):
		// no probe goes out, no ack comes back.
		for i, st := range []uint64{uint64(StateDead), 0x100 + uint64(StateDead)} {
			wide := st > uint64(StateDead)
			var ps wire.Params
			ps.Reset(make([]byte, 256))
			ps.Uint64(uint64(7 + i))
			ps.Uint64(1)
			ps.String(xep.Addr().String())
			ps.Uint64(st)
			ps.Uint64(uint64(inc))
			if err := asker.Send(hep.Addr(), CallProbeRequest, &ps); err != nil {
				t.Fatalf("probe-request: %v", err)
			}
			select {
			case reached := <-acks:
				if wide {
					t.Fatalf("a probe-request with view state %#x was relayed", st)
				}
				if !reached {
					t.Fatalf("x not reached by the helper")
				}
			case <-time.After(4 * cfg.Interval):
				if !wide {
					t.Fatalf("no probe-ack: helper stats %+v", helper.svc.Stats())
				}
			}
		}
		synctest.Wait()
		if got := xep.Incarnation(); got != inc || x.svc.Stats().Refutations != 0 {
			t.Errorf("x refuted a relayed death: incarnation %d (was %d), stats %+v", got, inc, x.svc.Stats())
		}
		if n := x.log.count(EventDeclaredDeadBy, hep.Addr()); n != 0 {
			t.Errorf("x reports %d EventDeclaredDeadBy from the helper, which declared nothing", n)
		}
	})
}

// TestAttackUnsolicitedProbeAck: a member sends probe-acks (reached) for
// indirect rounds it was never asked to help in, guessing their sequence
// numbers. They must not close the rounds: the crashed member is still
// declared dead within the bound.
func TestAttackUnsolicitedProbeAck(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		cfg.IndirectProbes = 0 // the attacker is asked for nothing
		victim := s.Addr()
		aep, bep := s.Listen(1, nil), s.Listen(2, nil)
		a := startNode(t, aep, cfg, []netip.AddrPort{bep.Addr(), victim})
		startNode(t, bep, cfg, []netip.AddrPort{aep.Addr(), victim})
		var ps wire.Params
		buf := make([]byte, 128)
		// The guesses cover a's next 64 round numbers (they start at its
		// clock at Start and grow by one).
		base := a.svc.seq.Load()
		stop := attackEvery(cfg.Tick, func() {
			for seq := base + 1; seq <= base+64; seq++ {
				ps.Reset(buf)
				ps.Uint64(seq)
				ps.Uint64(0)
				ps.Bool(true)
				ps.Uint64(0)
				_ = bep.Send(aep.Addr(), CallProbeAck, &ps)
			}
		})
		ok := waitFor(2*DetectBound(cfg), func() bool { return stateOf(a.svc, victim) == StateDead })
		stop()
		if !ok {
			t.Fatalf("crashed member %v at a after %v of forged probe-acks, want dead (stats %+v)",
				stateOf(a.svc, victim), 2*DetectBound(cfg), a.svc.Stats())
		}
	})
}

// TestAttackDeathAtTopIncarnation: a member tells a that x is dead at
// 2^32-1 while a has not heard x for an Interval (x cut off for a
// moment). a declares x dead there; x, alive and reachable again, must
// be able to come back: it cannot raise above a death at the top (nor
// raise into the top incarnations, refuteReserve), and its reply to a's
// reprobe, which told it of the death, takes the death back
// (reviveUnrefutedLocked).
// Before, x raised nothing (no incarnation above the top) and stayed
// dead at a for good.
func TestAttackDeathAtTopIncarnation(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := configAt(2 * time.Second)
		teller := s.Listen(3, nil)
		aep, xep := s.Listen(1, nil), s.Listen(2, nil)
		a := startNode(t, aep, cfg, []netip.AddrPort{teller.Addr(), xep.Addr()})
		startNode(t, xep, cfg, []netip.AddrPort{aep.Addr()})
		if !waitFor(4*cfg.Interval, func() bool { info, _ := a.svc.Member(xep.Addr()); return info.HeardAgo >= 0 }) {
			t.Fatal("a never heard x")
		}
		s.Net.Pause(xep.Addr())
		time.Sleep(cfg.Interval + cfg.Tick) // virtual: x not heard for an Interval
		sendUpdates(t, teller, aep.Addr(), update{addr: xep.Addr(), node: 2, state: StateDead, inc: maxInc})
		ok := waitFor(4*cfg.Interval, func() bool { return stateOf(a.svc, xep.Addr()) == StateDead })
		s.Net.Resume(xep.Addr())
		if !ok {
			t.Fatalf("x %v at a, want dead", stateOf(a.svc, xep.Addr()))
		}
		if info, _ := a.svc.Member(xep.Addr()); info.Incarnation != maxInc {
			t.Logf("x declared dead at %d, not at the top", info.Incarnation)
		}
		if !waitFor(4*cfg.ReprobeInterval, func() bool { return stateOf(a.svc, xep.Addr()) == StateAlive }) {
			info, _ := a.svc.Member(xep.Addr())
			t.Fatalf("x, alive and reachable, still %v at a after %v (a's view %+v, x's incarnation %d)",
				info.State, 4*cfg.ReprobeInterval, info, xep.Incarnation())
		}
	})
}

// TestAttackReplayedHeartbeatHidesCrash: in authenticated mode an
// attacker without the key captures one heartbeat request x sent, and
// once x has crashed replays it from x's address every half Interval
// (heartbeats are idempotent: no duplicate cache entry answers them, and
// the copy is within the age bound). A copy of what x sent before is no
// sign of life: x is declared dead within the bound.
func TestAttackReplayedHeartbeatHidesCrash(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		aep, xep := s.Listen(1, keyed), s.Listen(2, keyed)
		a := startNode(t, aep, cfg, []netip.AddrPort{xep.Addr()})
		x := startNode(t, xep, cfg, []netip.AddrPort{aep.Addr()})
		if !waitFor(4*cfg.Interval, func() bool { info, _ := a.svc.Member(xep.Addr()); return info.HeardAgo >= 0 }) {
			t.Fatal("a never heard x")
		}
		// The capture: a heartbeat x sends, read off the network.
		capt := captureHeartbeat(t, xep, s.Net.Attach(s.Addr()))
		// x crashes; the attacker sends the copy from x's address.
		s.Net.Crash(xep.Addr())
		x.svc.Close()
		xep.Close()
		forger := s.Net.Attach(xep.Addr())
		stop := attackEvery(cfg.Interval/2, func() { _ = forger.Send(capt, aep.Addr()) })
		ok := waitFor(2*DetectBound(cfg), func() bool { return stateOf(a.svc, xep.Addr()) == StateDead })
		stop()
		if !ok {
			info, _ := a.svc.Member(xep.Addr())
			t.Fatalf("crashed x %+v at a after %v of replayed heartbeats, want dead (engine: %d requests in)",
				info, 2*DetectBound(cfg), aep.Stats().Rx)
		}
	})
}

// TestAttackInjectedMembersNotReprobed: with AcceptJoins, a member
// gossips alive updates about eight addresses nothing answers on (a
// victim's ports). Every member adds them and probes them until it
// declares them dead; then it must stop (it sent the victim about 60
// datagrams per member per second for as long as it ran, reprobes): a member never heard is not
// reprobed, so one datagram does not make the cluster send to the victim
// for as long as it runs.
func TestAttackInjectedMembersNotReprobed(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		cfg.AcceptJoins = true
		var addrs []netip.AddrPort
		var nodes []*node
		for i := 0; i < 3; i++ {
			ep := s.Listen(uint32(i+1), keyed)
			addrs = append(addrs, ep.Addr())
			nodes = append(nodes, &node{ep: ep})
		}
		for i := range nodes {
			nodes[i] = startNode(t, nodes[i].ep, cfg, addrs)
		}
		var got atomic.Int64
		var upd []byte
		var victims []netip.AddrPort
		for i := 0; i < 8; i++ {
			c := s.Net.Attach(s.Addr())
			t.Cleanup(func() { c.Close() })
			go func() {
				buf := make([]byte, 2048)
				for {
					if _, _, err := c.Recv(buf); err != nil {
						return
					}
					got.Add(1)
				}
			}()
			victims = append(victims, c.LocalAddr())
			upd = putUpdate(upd, &update{addr: c.LocalAddr(), state: StateAlive, inc: 1})
		}
		var ps wire.Params
		ps.Reset(make([]byte, 512))
		ps.Uint64(uint64(nodes[0].ep.Incarnation()))
		ps.Bytes(upd)
		if err := nodes[0].ep.Send(addrs[1], CallGossip, &ps); err != nil {
			t.Fatalf("gossip: %v", err)
		}
		allDead := func() bool {
			for _, n := range nodes {
				for _, v := range victims {
					if info, ok := n.svc.Member(v); !ok || info.State != StateDead {
						return false
					}
				}
			}
			return true
		}
		if !waitFor(20*DetectBound(cfg), allDead) {
			t.Fatalf("injected members not all listed dead by every member after %v", 20*DetectBound(cfg))
		}
		time.Sleep(cfg.ProbeTimeout + cfg.Interval) // virtual: the last probes end
		before := got.Load()
		time.Sleep(10 * cfg.ReprobeInterval)
		if n := got.Load() - before; n != 0 {
			t.Fatalf("the victim received %d datagrams in %v after every injected member was dead (%d before)",
				n, 10*cfg.ReprobeInterval, before)
		}
	})
}

// TestAttackForgedDeathOfLiveMember: one member of thirty tells every
// other member, once, that a live member x is dead at its incarnation.
// Few of them heard x within the last Interval (each member is probed
// about twice per Interval cluster-wide), so most suspect it with the
// shortest timer; each must probe x at once, and x's answer clears the
// suspicion there: no member declares x dead. Before, 23 of the 28 did.
func TestAttackForgedDeathOfLiveMember(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		const n = 30
		cfg := DefaultConfig()
		cfg.Logger = quiet
		addrs := make([]netip.AddrPort, n)
		nodes := make([]*node, n)
		for i := range nodes {
			ep := s.Listen(uint32(i+1), nil)
			addrs[i] = ep.Addr()
			nodes[i] = &node{ep: ep}
		}
		for i := range nodes {
			nodes[i] = startNode(t, nodes[i].ep, cfg, addrs)
		}
		time.Sleep(25 * cfg.Interval) // virtual: settled
		x := nodes[n-1]
		for i := 1; i < n-1; i++ {
			sendUpdates(t, nodes[0].ep, addrs[i], update{addr: x.ep.Addr(), node: n, state: StateDead, inc: x.ep.Incarnation()})
		}
		time.Sleep(10 * DetectBoundAt(cfg, n))
		deaths := 0
		for _, nd := range nodes[:n-1] {
			deaths += nd.log.count(EventDead, x.ep.Addr())
		}
		if deaths != 0 {
			t.Fatalf("%d of %d members declared live x dead on one member's word", deaths, n-2)
		}
	})
}

// TestAttackForgedRevival: a member tells x that a crashed member, dead
// at x, is alive again at an incarnation above its death. x must not
// take that word for it: it checks the member with a probe of its own,
// which fails, and the member stays dead (a call to it still fails
// fast). A member that did come back is alive again on the same news
// within a few Ticks (the check's reply), not a ReprobeInterval later.
func TestAttackForgedRevival(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := DefaultConfig().WithInterval(2 * time.Second)
		cfg.Logger = quiet
		cfg.ReprobeInterval = time.Hour
		teller := s.Listen(3, nil)
		victim := s.Addr() // nothing answers there: crashed
		yep := s.Listen(4, nil)
		x := startNode(t, s.Listen(1, nil), cfg, []netip.AddrPort{teller.Addr(), victim, yep.Addr()})
		// y knows nobody: it never sends to x on its own, so x hears it
		// only through its own probes.
		startNode(t, yep, cfg, nil)
		s.Net.Pause(yep.Addr())
		sendUpdates(t, teller, x.ep.Addr(),
			update{addr: victim, node: 9, state: StateDead, inc: 0},
			update{addr: yep.Addr(), node: 4, state: StateDead, inc: 0})
		if !waitFor(10*DetectBound(cfg), func() bool {
			return stateOf(x.svc, victim) == StateDead && stateOf(x.svc, yep.Addr()) == StateDead
		}) {
			t.Fatalf("victim %v, y %v, want both dead", stateOf(x.svc, victim), stateOf(x.svc, yep.Addr()))
		}
		s.Net.Resume(yep.Addr())
		sendUpdates(t, teller, x.ep.Addr(), update{addr: victim, node: 9, state: StateAlive, inc: 7})
		time.Sleep(cfg.Interval) // virtual: x checks the victim
		if info, _ := x.svc.Member(victim); info.State != StateDead || x.log.count(EventAlive, victim) != 0 {
			t.Fatalf("crashed member %+v at x after a forged alive update (%d EventAlive), want dead throughout",
				info, x.log.count(EventAlive, victim))
		}
		if err := x.ep.Call(ctxFor(t, time.Second), victim, wire.CallUserBase, nil, nil); errnoOf(err) != wire.ENODEAD {
			t.Fatalf("call to the dead victim: %v, want ENODEAD", err)
		}
		sendUpdates(t, teller, x.ep.Addr(), update{addr: yep.Addr(), node: 4, state: StateAlive, inc: yep.Incarnation()})
		if !waitFor(cfg.Interval, func() bool { return stateOf(x.svc, yep.Addr()) == StateAlive }) {
			t.Fatalf("y, back and told alive, still %v at x after %v", stateOf(x.svc, yep.Addr()), cfg.Interval)
		}
	})
}

// TestAttackHealthInflation: a member tells x, once per Interval, that x
// is suspect at its current incarnation. Each claim is new (x refuted
// the last one), and each refutation used to raise x's local health by
// one, up to the top: x stretched its own timeouts five times and took
// several DetectBounds to declare a crashed member dead. Others' claims
// raise the health by one at most; x detects the crash within twice the
// bound (the timeouts stretched at most twice).
func TestAttackHealthInflation(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := DefaultConfig()
		cfg.Logger = quiet
		teller := s.Listen(3, nil)
		xep, vep := s.Listen(1, nil), s.Listen(2, nil)
		x := startNode(t, xep, cfg, []netip.AddrPort{teller.Addr(), vep.Addr()})
		v := startNode(t, vep, cfg, []netip.AddrPort{xep.Addr()})
		var top atomic.Int64
		var ps wire.Params
		buf := make([]byte, 256)
		stop := attackEvery(cfg.Interval, func() {
			heartbeatParams(&ps, buf, teller.Incarnation(), view{state: StateSuspect, inc: xep.Incarnation()}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Interval)
			_ = teller.Call(ctx, xep.Addr(), CallHeartbeat, &ps, nil)
			cancel()
			if h := int64(x.svc.Stats().Health); h > top.Load() {
				top.Store(h)
			}
		})
		time.Sleep(20 * cfg.Interval) // virtual: the claims go on
		s.Net.Crash(vep.Addr())
		v.svc.Close()
		crashed := time.Now()
		bound := 2 * DetectBound(cfg)
		ok := waitFor(10*DetectBound(cfg), func() bool { return stateOf(x.svc, vep.Addr()) == StateDead })
		took := time.Since(crashed)
		stop()
		st := x.svc.Stats()
		if !ok || took > bound {
			t.Fatalf("x declared the crashed member dead after %v (dead %v), want within %v (2 DetectBound): health up to %d, %d refutations",
				took, ok, bound, top.Load(), st.Refutations)
		}
		t.Logf("detection by x %v (DetectBound %v), health up to %d, %d refutations", took, DetectBound(cfg), top.Load(), st.Refutations)
		if top.Load() > 1 {
			t.Fatalf("x's local health reached %d on others' claims, want at most 1", top.Load())
		}
	})
}

// captureHeartbeat returns a heartbeat request ep sends, as tap reads it
// off the network.
func captureHeartbeat(t *testing.T, ep *rfc.Endpoint, tap *simnet.Conn) []byte {
	t.Helper()
	var ps wire.Params
	p, err := ep.Go(ctxFor(t, time.Second), tap.LocalAddr(), CallHeartbeat,
		heartbeatParams(&ps, make([]byte, 256), ep.Incarnation(), view{}, nil))
	if err != nil {
		t.Fatalf("Go: %v", err)
	}
	defer p.Release()
	b := make([]byte, 2048)
	n, _, err := tap.Recv(b)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	return b[:n]
}

// attackEvery runs send every period in its own goroutine (an attacker
// that keeps at it) until the stop it returns is called; stop returns
// once send has returned for the last time.
func attackEvery(period time.Duration, send func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(period)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
			}
			send()
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// attackKey is the cluster key of the keyed attack tests.
var attackKey = []byte("attack-test-cluster-key")

func keyed(c *rfc.Config) { c.Key = attackKey }

// TestAttackJoinsNeedKey: with AcceptJoins in checksum mode anyone could
// send a join or an alive update from any address (a victim's), and every
// member would add it and probe it. Start refuses AcceptJoins on an
// endpoint without a cluster key, naming the field.
func TestAttackJoinsNeedKey(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		cfg.AcceptJoins = true
		svc, err := Start(s.Listen(1, nil), cfg, nil)
		if rfctest.ConfigError(t, err, "heartbeat", "AcceptJoins") == nil {
			if svc != nil {
				svc.Close()
			}
			t.Fatal("Start accepted AcceptJoins on an endpoint without a cluster key")
		}
		x := startNode(t, s.Listen(2, keyed), cfg, nil)
		if x.svc.Config().AcceptJoins != true {
			t.Fatal("AcceptJoins lost on a keyed endpoint")
		}
	})
}

// TestAttackJoinUnderLiveNodeID: with AcceptJoins, a node holding the
// key joins under the node id of a live member y (3), then crashes. A
// helper asked about it must probe it, at its address: found by node id
// first, y was probed instead and answered, and the crashed joiner stayed
// alive (and probed) for as long as y lived, a place in the member list
// that no eviction frees (only dead members are evicted).
func TestAttackJoinUnderLiveNodeID(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		cfg.AcceptJoins = true
		aep, bep, yep := s.Listen(1, keyed), s.Listen(2, keyed), s.Listen(3, keyed)
		others := allBut(aep.Addr(), bep.Addr(), yep.Addr())
		a := startNode(t, aep, cfg, others(aep.Addr()))
		b := startNode(t, bep, cfg, others(bep.Addr()))
		startNode(t, yep, cfg, others(yep.Addr()))
		if !waitFor(20*cfg.Interval, func() bool { return settled(a) && settled(b) }) {
			t.Fatal("cluster never settled")
		}
		jep := s.Listen(3, keyed)
		j := startNode(t, jep, cfg, nil)
		if err := j.svc.Join(ctxFor(t, 5*time.Second), aep.Addr()); err != nil {
			t.Fatalf("join: %v", err)
		}
		crashWantDead(t, s, j, a, 4*DetectBound(cfg), "the crashed joiner under y's node id, at its seed,")
	})
}

// TestAttackJoinUnderNodeIDHeldElsewhere: as TestAttackJoinUnderLiveNodeID,
// but the seed a holds no member under y's node id (3) when the joiner
// takes it: y is a member of b alone, heard there first. The joiner joins
// a, then b, so a holds it as 3 and b without an id (y holds 3 there).
// After the joiner crashes, a's indirect rounds about it ask b about node
// 3 at the joiner's address: a helper that looked by node id first found
// y and probed it, y answered, and the crashed joiner stayed alive at a
// for as long as y lived.
func TestAttackJoinUnderNodeIDHeldElsewhere(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		cfg.AcceptJoins = true
		aep, bep, yep := s.Listen(1, keyed), s.Listen(2, keyed), s.Listen(3, keyed)
		jep := s.Listen(3, keyed)
		a := startNode(t, aep, cfg, []netip.AddrPort{bep.Addr()})
		b := startNode(t, bep, cfg, []netip.AddrPort{aep.Addr(), yep.Addr()})
		startNode(t, yep, cfg, []netip.AddrPort{bep.Addr()})
		if !waitFor(20*cfg.Interval, func() bool { return settled(a) && settled(b) }) {
			t.Fatal("cluster never settled")
		}
		if info, _ := a.svc.Member(yep.Addr()); info.Node != 0 {
			t.Fatalf("a holds y under node id %d before the join, want none (the test needs a without y's id)", info.Node)
		}
		j := startNode(t, jep, cfg, nil)
		if err := j.svc.Join(ctxFor(t, 5*time.Second), aep.Addr()); err != nil {
			t.Fatalf("join: %v", err)
		}
		if err := j.svc.Join(ctxFor(t, 5*time.Second), bep.Addr()); err != nil {
			t.Fatalf("join b: %v", err)
		}
		if !waitFor(20*cfg.Interval, func() bool {
			ia, oka := a.svc.Member(jep.Addr())
			ib, okb := b.svc.Member(jep.Addr())
			return oka && okb && ia.Node == 3 && ia.State == StateAlive && ib.State == StateAlive
		}) {
			ia, _ := a.svc.Member(jep.Addr())
			ib, _ := b.svc.Member(jep.Addr())
			t.Fatalf("joiner at a %+v, at b %+v: want alive at both, node 3 at a", ia, ib)
		}
		crashWantDead(t, s, j, a, 4*DetectBound(cfg), "the crashed joiner under y's node id, at its seed,")
	})
}

// TestAttackForgedNodeIDOfNewMember: as TestAttackForgedNodeIDHidesCrash,
// but the update names an address a did not hold (a joins it, under
// AcceptJoins) and nothing answers on: a member holding the key tells a
// once that x is alive under y's node id (5), where a holds no member
// under it (y is a member of z, not of a), then leaves. Had a taken the
// id from the update, its indirect rounds about x would ask z about node
// 5, and z, which holds no member at x's address, would probe y and
// answer reached: x would stay alive at a for as long as y lives.
func TestAttackForgedNodeIDOfNewMember(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		cfg.AcceptJoins = true
		aep, bep, yep, zep := s.Listen(1, keyed), s.Listen(2, keyed), s.Listen(5, keyed), s.Listen(6, keyed)
		a := startNode(t, aep, cfg, []netip.AddrPort{bep.Addr(), zep.Addr()})
		startNode(t, bep, cfg, []netip.AddrPort{aep.Addr()})
		startNode(t, yep, cfg, []netip.AddrPort{zep.Addr()})
		z := startNode(t, zep, cfg, []netip.AddrPort{aep.Addr(), yep.Addr()})
		if !waitFor(20*cfg.Interval, func() bool {
			zy, _ := z.svc.Member(yep.Addr())
			return settled(a) && zy.Node == 5
		}) {
			t.Fatal("cluster never settled, or z never heard y")
		}
		x := s.Addr()
		sendHeartbeat(t, bep, aep.Addr(), view{}, update{addr: x, node: 5, state: StateAlive, inc: 1})
		s.Net.Crash(bep.Addr())
		bep.Close()
		if !waitFor(20*cfg.Interval, func() bool { _, ok := a.svc.Member(x); return ok }) {
			t.Fatal("a never added x")
		}
		bound := 4 * DetectBound(cfg)
		if !waitFor(bound, func() bool { return stateOf(a.svc, x) == StateDead }) {
			info, _ := a.svc.Member(x)
			t.Fatalf("x, named once under y's node id and never heard, %+v at a after %v, want dead", info, bound)
		}
	})
}

// TestAttackInjectedMembersEvicted: a member holding the key gossips
// alive updates about addresses nothing answers on until the member list
// of a seed is full. Once they are dead they must not keep a node from
// joining (it was refused ENOSPC): a dead member added on the cluster's
// word and never heard gives its place to a new one.
func TestAttackInjectedMembersEvicted(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		const max = 8
		cfg := testConfig()
		cfg.AcceptJoins = true
		cfg.MaxMembers = max
		aep, sep := s.Listen(1, keyed), s.Listen(2, keyed)
		startNode(t, aep, cfg, []netip.AddrPort{sep.Addr()})
		seed := startNode(t, sep, cfg, []netip.AddrPort{aep.Addr()})
		var upd []byte
		var injected []netip.AddrPort
		for i := 0; i < max-1; i++ {
			a := s.Addr()
			injected = append(injected, a)
			upd = putUpdate(upd, &update{addr: a, state: StateAlive, inc: 1})
		}
		var ps wire.Params
		ps.Reset(make([]byte, 512))
		ps.Uint64(uint64(aep.Incarnation()))
		ps.Bytes(upd)
		if err := aep.Send(sep.Addr(), CallGossip, &ps); err != nil {
			t.Fatalf("gossip: %v", err)
		}
		if !waitFor(20*DetectBound(cfg), func() bool {
			for _, a := range injected {
				if stateOf(seed.svc, a) != StateDead {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("injected members not all dead at the seed: %+v", seed.svc.Members())
		}
		if n := len(seed.svc.Members()); n != max {
			t.Fatalf("seed lists %d members, want its bound %d", n, max)
		}
		j := startNode(t, s.Listen(3, keyed), testConfig(), nil)
		if err := j.svc.Join(ctxFor(t, 5*time.Second), sep.Addr()); err != nil {
			t.Fatalf("join through a seed whose list is full of dead injected members: %v", err)
		}
		if st := stateOf(seed.svc, j.ep.Addr()); st != StateAlive {
			t.Fatalf("joined node %v at the seed", st)
		}
		// A node without the key cannot inject at all: the engine drops
		// its datagrams.
		stranger := s.Listen(4, nil)
		other := s.Addr()
		ps.Reset(make([]byte, 512))
		ps.Uint64(uint64(stranger.Incarnation()))
		ps.Bytes(putUpdate(nil, &update{addr: other, state: StateAlive, inc: 1}))
		if err := stranger.Send(sep.Addr(), CallGossip, &ps); err != nil {
			t.Fatalf("gossip: %v", err)
		}
		time.Sleep(cfg.Interval)
		if _, ok := seed.svc.Member(other); ok {
			t.Fatalf("a node without the key added %v at the seed", other)
		}
	})
}

// TestAttackIncarnationBurn: a member tells x it is suspect at 2^32-2.
// Raising to 2^32-1 to refute it would leave x no raise for any later
// claim. A claim in the top refuteReserve incarnations is not refuted by
// a raise from below them; a claim just below them costs x one raise and
// leaves it refuteReserve more; a later claim at its incarnation is
// refuted as usual.
func TestAttackIncarnationBurn(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := DefaultConfig().WithInterval(2 * time.Second)
		cfg.Logger = quiet
		teller := s.Listen(3, nil)
		xep := s.Listen(1, nil)
		x := startNode(t, xep, cfg, []netip.AddrPort{teller.Addr()})
		xep.SetIncarnation(1000)
		for _, claim := range []uint32{maxInc - 1, maxInc - refuteReserve - 1} {
			sendHeartbeat(t, teller, xep.Addr(), view{state: StateSuspect, inc: claim})
			after := xep.Incarnation()
			sendHeartbeat(t, teller, xep.Addr(), view{state: StateSuspect, inc: after})
			if got := xep.Incarnation(); got <= after || got > maxInc-refuteReserve+1 {
				t.Fatalf("x at %d after a claim at %d, then %d after a claim at its incarnation: want a raise, below the top band (stats %+v)",
					after, claim, got, x.svc.Stats())
			}
		}
	})
}

// TestAttackOtherMembersHeartbeatHidesCrash: in authenticated mode an
// attacker without the key captures, again and again, fresh heartbeats a
// live member w sends, and sends each from the address of a member x
// that has crashed. The tag does not cover the source address and each
// copy's stamp is later than anything x sent: the engine took it for a
// sign of life of x (its stamps are later than x's last), so x stayed
// alive at a as long as w ran. A request from a peer's address naming
// another node id than the peer's is no sign of life (rfc, "Liveness
// evidence"): x is declared dead within the bound.
func TestAttackOtherMembersHeartbeatHidesCrash(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		aep, xep, wep := s.Listen(1, keyed), s.Listen(2, keyed), s.Listen(3, keyed)
		others := allBut(aep.Addr(), xep.Addr(), wep.Addr())
		a := startNode(t, aep, cfg, others(aep.Addr()))
		x := startNode(t, xep, cfg, others(xep.Addr()))
		startNode(t, wep, cfg, others(wep.Addr()))
		if !waitFor(10*cfg.Interval, func() bool { info, _ := a.svc.Member(xep.Addr()); return info.HeardAgo >= 0 }) {
			t.Fatal("a never heard x")
		}
		// w above x in incarnation: its heartbeat would also read as x
		// refuting at a higher one.
		if wep.Incarnation() <= xep.Incarnation() {
			wep.SetIncarnation(xep.Incarnation() + 1)
		}
		tap := s.Net.Attach(s.Addr())
		// w's heartbeat to a, as w sends it: w's view of a.
		capture := func() []byte { return captureHeartbeat(t, wep, tap) }
		s.Net.Crash(xep.Addr())
		x.svc.Close()
		xep.Close()
		forger := s.Net.Attach(xep.Addr())
		stop := attackEvery(cfg.Interval/2, func() { _ = forger.Send(capture(), aep.Addr()) })
		defer stop()
		ok := waitFor(2*DetectBound(cfg), func() bool { return stateOf(a.svc, xep.Addr()) == StateDead })
		if !ok {
			info, _ := a.svc.Member(xep.Addr())
			t.Fatalf("crashed x %+v at a after %v of w's fresh heartbeats sent from x's address, want dead", info, 2*DetectBound(cfg))
		}
		// And it stays dead while they go on.
		for end := time.Now().Add(2 * DetectBound(cfg)); time.Now().Before(end); time.Sleep(cfg.Interval / 4) {
			if info, _ := a.svc.Member(xep.Addr()); info.State != StateDead {
				t.Fatalf("crashed x back to %+v at a under w's heartbeats sent from x's address", info)
			}
		}
	})
}

// crashWantDead crashes victim and fails the test unless a holds it dead
// within bound; what names the victim in the failure.
func crashWantDead(t *testing.T, s *rfctest.Sim, victim, a *node, bound time.Duration, what string) {
	t.Helper()
	addr := victim.ep.Addr()
	s.Net.Crash(addr)
	victim.svc.Close()
	victim.ep.Close()
	if !waitFor(bound, func() bool { return stateOf(a.svc, addr) == StateDead }) {
		info, _ := a.svc.Member(addr)
		t.Fatalf("%s %+v at %v after %v, want dead", what, info, a.ep.Addr(), bound)
	}
}

// allBut returns a function giving the members of all but self: the
// member list each of a test's nodes starts with.
func allBut(all ...netip.AddrPort) func(self netip.AddrPort) []netip.AddrPort {
	return func(self netip.AddrPort) (o []netip.AddrPort) {
		for _, m := range all {
			if m != self {
				o = append(o, m)
			}
		}
		return o
	}
}

// TestAttackProbeAckForOtherTarget: x has crashed; the helper a asks in
// its indirect rounds about x sends probe-acks (reached) for the numbers
// of a's rounds to come, naming another target (node 99), as acks sent
// to an earlier process of a about another member would be, replayed or
// held in the network, should the numbers meet (a clock stepped back
// across the restart; before round numbers started at the clock, every
// process numbered from 1). An ack naming another node id than the
// round's member must not close the round: x is declared dead within
// the bound. Before, such an ack was x's sign of life and x stayed alive.
func TestAttackProbeAckForOtherTarget(t *testing.T) {
	// The rounds to come: numbers seq+1 on.
	next := func(a *Service) uint64 { return a.seq.Load() + 1 }
	attackProbeAcks(t, next, 99, "probe-acks about node 99 from the helper a asks")
}

// TestAttackProbeAckOfEarlierProcess: as TestAttackProbeAckForOtherTarget,
// but the acks name x, with the sequence numbers an earlier process of a
// gave its rounds (from 1): acks of rounds about x that a's previous
// process made while b could reach x and a could not, held in the
// network or replayed within the age bound after a restarted and x
// crashed. They must not close the new process's rounds: a process
// numbers its rounds from its wall clock at Start, above any number an
// earlier process gave.
func TestAttackProbeAckOfEarlierProcess(t *testing.T) {
	earlier := func(*Service) uint64 { return 1 }
	const x = 4 // as the earlier process's rounds about x were acked
	attackProbeAcks(t, earlier, x, "probe-acks about x with the sequence numbers of an earlier process")
}

// attackProbeAcks starts a, its helper b and x (node 4), crashes x, and
// has b send a, every Tick/4, probe-acks (reached) naming node target for
// the 256 round numbers from first(a's service) on; x must be dead at a
// within twice the detection bound. what names the acks in the failure.
func attackProbeAcks(t *testing.T, first func(a *Service) uint64, target uint64, what string) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		aep, bep, xep := s.Listen(1, nil), s.Listen(2, nil), s.Listen(4, nil)
		a := startNode(t, aep, cfg, []netip.AddrPort{bep.Addr(), xep.Addr()})
		// The helper's own verdict on x comes long after a's bound, so
		// that only a's rounds decide x at a.
		startNode(t, bep, configAt(40*cfg.Interval), []netip.AddrPort{aep.Addr(), xep.Addr()})
		x := startNode(t, xep, cfg, []netip.AddrPort{aep.Addr(), bep.Addr()})
		if !waitFor(10*cfg.Interval, func() bool { info, _ := a.svc.Member(xep.Addr()); return info.HeardAgo >= 0 && info.Node == 4 }) {
			t.Fatal("a never heard x")
		}
		s.Net.Crash(xep.Addr())
		x.svc.Close()
		xep.Close()
		var ps wire.Params
		buf := make([]byte, 128)
		from := first(a.svc)
		stop := attackEvery(cfg.Tick/4, func() {
			for seq := from; seq < from+256; seq++ {
				ps.Reset(buf)
				ps.Uint64(seq)
				ps.Uint64(target)
				ps.Bool(true)
				ps.Uint64(5)
				_ = bep.Send(aep.Addr(), CallProbeAck, &ps)
			}
		})
		ok := waitFor(2*DetectBound(cfg), func() bool { return stateOf(a.svc, xep.Addr()) == StateDead })
		stop()
		if !ok {
			t.Fatalf("crashed x %v at a after %v of %s, want dead (stats %+v)",
				stateOf(a.svc, xep.Addr()), 2*DetectBound(cfg), what, a.svc.Stats())
		}
	})
}

// TestAttackClaimsStarveRounds: a member holding the key tells every
// live member, twice per Tick, that it is suspect at its own incarnation.
// Each claim is refuted (and raises the health to 1 at most), and each
// refutation is gossiped at the next tick, retried at every tick while
// the budget is short. Each live member must still declare a crashed
// member dead within twice DetectBoundAt (others' claims stretch the
// timers at most twice, Security): the gossip, paid one datagram at a
// time as the credit comes, must not keep the budget below what an
// indirect round needs at once. Before, no live member had declared the
// crashed member dead after ten times that (24.2 s, 8 runs of 8). The
// same claims about the other live members, each checked by a probe,
// are run too.
func TestAttackClaimsStarveRounds(t *testing.T) {
	for _, kind := range []string{"self", "others"} {
		claimsStarve(t, kind)
	}
}

// claimsStarve runs TestAttackClaimsStarveRounds with claims about each
// live member itself (kind "self") or, carried in the updates, about
// every other live member (kind "others": each checked by a probe).
func claimsStarve(t *testing.T, kind string) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := DefaultConfig()
		cfg.Logger = quiet
		const n = 6 // teller and crashed member included: not a small cluster
		teller := s.Listen(100, nil)
		var eps []*rfc.Endpoint
		addrs := []netip.AddrPort{teller.Addr()}
		for i := range n - 1 {
			ep := s.Listen(uint32(i+1), nil)
			eps = append(eps, ep)
			addrs = append(addrs, ep.Addr())
		}
		var nodes []*node
		for _, ep := range eps {
			nodes = append(nodes, startNode(t, ep, cfg, addrs))
		}
		live, v := nodes[:len(nodes)-1], nodes[len(nodes)-1]
		var top atomic.Int64
		var ps wire.Params
		buf := make([]byte, 256)
		stop := attackEvery(cfg.Tick/2, func() {
			for _, x := range live {
				if kind == "self" {
					heartbeatParams(&ps, buf, teller.Incarnation(), view{state: StateSuspect, inc: x.ep.Incarnation()}, nil)
				} else {
					var upd []byte
					for _, y := range live {
						if y != x {
							u := update{addr: y.ep.Addr(), node: y.ep.NodeID(), from: 7, state: StateSuspect, inc: y.ep.Incarnation()}
							upd = putUpdate(upd, &u)
						}
					}
					heartbeatParams(&ps, buf, teller.Incarnation(), view{state: StateAlive, inc: x.ep.Incarnation()}, upd)
				}
				ctx, cancel := context.WithTimeout(context.Background(), cfg.Tick/8)
				_ = teller.Call(ctx, x.ep.Addr(), CallHeartbeat, &ps, nil)
				cancel()
				if h := int64(x.svc.Stats().Health); h > top.Load() {
					top.Store(h)
				}
			}
		})
		time.Sleep(20 * cfg.Interval) // virtual: the claims go on
		s.Net.Crash(v.ep.Addr())
		v.svc.Close()
		crashed := time.Now()
		bound := 2 * DetectBoundAt(cfg, n)
		ok := waitFor(10*bound, func() bool {
			for _, x := range live {
				if stateOf(x.svc, v.ep.Addr()) != StateDead {
					return false
				}
			}
			return true
		})
		took := time.Since(crashed)
		stop()
		var extra, deferred, refuted uint64
		for _, x := range live {
			st := x.svc.Stats()
			extra, deferred, refuted = extra+st.Extra, deferred+st.Deferred, refuted+st.Refutations
		}
		if !ok || took > bound {
			var states []State
			for _, x := range live {
				states = append(states, stateOf(x.svc, v.ep.Addr()))
			}
			t.Fatalf("claims about %s: crashed member dead at every live member after %v (all dead %v, states %v), want within %v (2 DetectBoundAt(%d)): health up to %d, %d refutations, budget paid %d, deferred %d",
				kind, took, ok, states, bound, n, top.Load(), refuted, extra, deferred)
		}
		t.Logf("claims about %s: detection %v (2 DetectBoundAt %v), health up to %d, %d refutations, budget paid %d, deferred %d",
			kind, took, bound, top.Load(), refuted, extra, deferred)
	})
}

// TestAttackForgedNodeIDHidesCrash: a member holding the key tells a,
// once, that x (which runs without a node id, 0) is alive under y's node
// id, then leaves. A helper finds an indirect probe's target by node id
// first: had a taken the id, the honest helper z would probe y for each
// of a's rounds about x and answer reached, and a crashed x would stay
// alive at a for as long as y lives. A member's node id is the member's
// own word (its datagrams and replies), never another member's: x is
// declared dead at a within the bound.
func TestAttackForgedNodeIDHidesCrash(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		aep, bep, xep, yep, zep := s.Listen(1, keyed), s.Listen(2, keyed), s.Listen(0, keyed), s.Listen(5, keyed), s.Listen(6, keyed)
		others := allBut(aep.Addr(), bep.Addr(), xep.Addr(), yep.Addr(), zep.Addr())
		a := startNode(t, aep, cfg, others(aep.Addr()))
		x := startNode(t, xep, cfg, others(xep.Addr()))
		startNode(t, yep, cfg, others(yep.Addr()))
		z := startNode(t, zep, cfg, others(zep.Addr()))
		if !waitFor(20*cfg.Interval, func() bool {
			info, _ := a.svc.Member(xep.Addr())
			zy, _ := z.svc.Member(yep.Addr())
			return info.HeardAgo >= 0 && zy.Node == 5
		}) {
			t.Fatal("a never heard x, or z never heard y")
		}
		info, _ := a.svc.Member(xep.Addr())
		sendHeartbeat(t, bep, aep.Addr(), view{}, update{addr: xep.Addr(), node: 5, state: StateAlive, inc: info.Incarnation})
		s.Net.Crash(bep.Addr())
		bep.Close()
		crashWantDead(t, s, x, a, 2*DetectBound(cfg), "crashed x, after one update naming it under y's node id,")
	})
}

// TestAttackWideParams: a u64 parameter that carries a 32-bit field (an
// incarnation, a node id) or a view state is refused EINVAL when its
// value does not fit, before anything changes. Before, the handlers cut
// it (1<<32 + x read as x) and acted on x: a heartbeat at 2^32 + the
// sender's incarnation was taken at that incarnation, a task report
// naming 2^32 + the task's incarnation renewed or ended the task.
func TestAttackWideParams(t *testing.T) {
	mn, wn := heardPair(t)
	waitHeard(t, wn, mn.ep.Addr(), 5*time.Second)
	m := newTestMaster(t, mn.svc)
	lt := newLeaseTask()
	defer close(lt.release)
	wk := newTestWorker(t, wn.svc, DefaultWorkerConfig(), lt.run)
	task, err := m.Start(ctxFor(t, 5*time.Second), wn.ep.Addr(), 1, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	<-lt.ran
	mInc, wInc := uint64(mn.ep.Incarnation()), uint64(wn.ep.Incarnation())
	const wide = 1 << 32
	u64s := func(ps *wire.Params, vs ...uint64) {
		for _, v := range vs {
			ps.Uint64(v)
		}
	}
	// serve runs handler h on a request from ep (a member of the other
	// node) carrying the parameters fill writes.
	serve := func(ep *rfc.Endpoint, call uint16, h rfc.Handler, fill func(ps *wire.Params)) wire.Errno {
		var ps wire.Params
		ps.Reset(make([]byte, 512))
		fill(&ps)
		req := rfctest.Request(t, ep.Addr(), ep.NodeID(), ep.Incarnation(), call, &ps)
		req.Arrived = mn.ep.Now()
		var rep wire.Params
		rep.Reset(make([]byte, 2048))
		return h(req, &rep)
	}
	s := mn.svc
	cases := []struct {
		name string
		call uint16
		h    rfc.Handler
		fill func(ps *wire.Params)
	}{
		{"heartbeat sender incarnation", CallHeartbeat, s.serveHeartbeat, func(ps *wire.Params) {
			u64s(ps, wide+wInc+1, 0, 0, 0)
			ps.Bytes(nil)
		}},
		{"heartbeat view state", CallHeartbeat, s.serveHeartbeat, func(ps *wire.Params) {
			u64s(ps, wInc, 256+uint64(StateSuspect), mInc, 0)
			ps.Bytes(nil)
		}},
		{"heartbeat view incarnation", CallHeartbeat, s.serveHeartbeat, func(ps *wire.Params) {
			u64s(ps, wInc, uint64(StateSuspect), wide+mInc, 0)
			ps.Bytes(nil)
		}},
		{"heartbeat died-at", CallHeartbeat, s.serveHeartbeat, func(ps *wire.Params) {
			u64s(ps, wInc, uint64(StateAlive), mInc, wide+mInc)
			ps.Bytes(nil)
		}},
		{"probe-request node", CallProbeRequest, s.serveProbeRequest, func(ps *wire.Params) {
			u64s(ps, 1, wide+uint64(wn.ep.NodeID()))
			ps.String(mn.ep.Addr().String())
			u64s(ps, uint64(StateAlive), 0)
		}},
		{"probe-request view incarnation", CallProbeRequest, s.serveProbeRequest, func(ps *wire.Params) {
			u64s(ps, 1, uint64(wn.ep.NodeID()))
			ps.String(wn.ep.Addr().String())
			u64s(ps, uint64(StateSuspect), wide+wInc)
		}},
		{"probe-request view state", CallProbeRequest, s.serveProbeRequest, func(ps *wire.Params) {
			u64s(ps, 1, uint64(wn.ep.NodeID()))
			ps.String(wn.ep.Addr().String())
			u64s(ps, 256+uint64(StateSuspect), wInc)
		}},
		{"probe-ack node", CallProbeAck, s.serveProbeAck, func(ps *wire.Params) {
			u64s(ps, 1, wide+uint64(wn.ep.NodeID()))
			ps.Bool(true)
			u64s(ps, wInc)
		}},
		{"probe-ack incarnation", CallProbeAck, s.serveProbeAck, func(ps *wire.Params) {
			u64s(ps, 1, uint64(wn.ep.NodeID()))
			ps.Bool(true)
			u64s(ps, wide+wInc)
		}},
		{"gossip sender incarnation", CallGossip, s.serveGossip, func(ps *wire.Params) {
			u64s(ps, wide+wInc+1)
			ps.Bytes(nil)
		}},
		{"join sender incarnation", CallJoin, s.serveJoin, func(ps *wire.Params) { u64s(ps, wide+wInc+1) }},
		{"task-check master incarnation", CallTaskCheck, m.serveCheck, func(ps *wire.Params) {
			u64s(ps, task.ID, wide+mInc, wInc)
		}},
		{"task-check task incarnation", CallTaskCheck, m.serveCheck, func(ps *wire.Params) {
			u64s(ps, task.ID, mInc, wide+wInc)
		}},
		{"task-progress task incarnation", CallTaskProgress, m.serveProgress, func(ps *wire.Params) {
			u64s(ps, task.ID, mInc, wide+wInc, 1, 2)
		}},
		{"task-result task incarnation", CallTaskResult, m.serveResult, func(ps *wire.Params) {
			u64s(ps, task.ID, mInc, wide+wInc, 0)
			ps.Bytes(nil)
		}},
	}
	members := func(s *Service) []MemberInfo {
		ms := s.Members()
		for i := range ms {
			ms[i].HeardAgo = 0
		}
		return ms
	}
	for _, c := range cases {
		before := members(s)
		if e := serve(wn.ep, c.call, c.h, c.fill); e != wire.EINVAL {
			t.Errorf("%s past 32 bits: %v, want EINVAL", c.name, e)
		}
		if after := members(s); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s past 32 bits: members %+v, were %+v", c.name, after, before)
		}
		if len(s.relayQ) != 0 {
			t.Errorf("%s past 32 bits: an indirect probe queued", c.name)
		}
		if p, _ := task.Progress(); p != 0 {
			t.Errorf("%s past 32 bits: progress %d taken", c.name, p)
		}
		select {
		case <-task.Done():
			t.Fatalf("%s past 32 bits: the task ended", c.name)
		default:
		}
	}
	// The worker's side: a start under 2^32 + the master's incarnation.
	started := wk.Stats().Started
	e := serve(mn.ep, CallTaskStart, wk.serveStart, func(ps *wire.Params) {
		u64s(ps, task.ID+1, wide+mInc, 1)
		ps.Bytes(nil)
	})
	if e != wire.EINVAL || wk.Stats().Started != started {
		t.Errorf("task-start master incarnation past 32 bits: %v, started %d (was %d), want EINVAL and none", e, wk.Stats().Started, started)
	}
}

// TestAttackWideReplies: a reply field that carries a 32-bit value (a
// node id, an incarnation) past its range, or a heard-ago past what a
// Duration holds, is malformed: QueryMembersView and Master.Start answer
// EPROTO instead of reading it cut (2^32 + x as x) as another valid
// value. The start the worker claims to have accepted is given up and
// cancelled there, and counted in MasterStats.Malformed.
func TestAttackWideReplies(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		const wide = 1 << 32
		liar := s.Listen(2, nil)
		cli := s.Listen(3, nil)
		inc := uint64(liar.Incarnation())
		// page is the liar's members page: its header node id and
		// incarnation, then one entry's node id, incarnation, heard-ago.
		var page [5]uint64
		if err := liar.Register(CallMembers, "members", schemaMembers, rfc.Idempotent, func(_ *rfc.Request, rep *wire.Params) wire.Errno {
			rep.Uint64(0)
			rep.Uint64(page[0])
			rep.Uint64(page[1])
			rep.String(cli.Addr().String())
			rep.Uint64(page[2])
			rep.Uint64(uint64(StateAlive))
			rep.Uint64(page[3])
			rep.Uint64(page[4])
			return rep.Err()
		}); err != nil {
			t.Fatal(err)
		}
		good := [5]uint64{2, inc, 3, 1, 1000}
		page = good
		if v, err := QueryMembersView(ctxFor(t, time.Second), cli, liar.Addr()); err != nil || v.Node != 2 || len(v.Members) != 1 {
			t.Fatalf("well-formed page: %+v, %v", v, err)
		}
		for i, name := range []string{"receiver node id", "receiver incarnation", "member node id", "member incarnation"} {
			page = good
			page[i] += wide
			v, err := QueryMembersView(ctxFor(t, time.Second), cli, liar.Addr())
			if errnoOf(err) != wire.EPROTO {
				t.Errorf("members page with %s past 32 bits: %+v, %v, want EPROTO", name, v, err)
			}
		}
		page = good
		page[4] = 1 << 60 // µs: past a Duration, and not "never"
		if v, err := QueryMembersView(ctxFor(t, time.Second), cli, liar.Addr()); errnoOf(err) != wire.EPROTO {
			t.Errorf("members page with heard-ago 2^60 µs: %+v, %v, want EPROTO", v, err)
		}

		// The task-start reply: the liar accepts, naming 2^32 + its
		// incarnation.
		cancels := make(chan uint64, 4)
		if err := liar.Register(CallTaskStart, "task-start", schemaTaskStart, 0, func(_ *rfc.Request, rep *wire.Params) wire.Errno {
			rep.Uint64(wide + inc)
			return wire.OK
		}); err != nil {
			t.Fatal(err)
		}
		if err := liar.Register(CallTaskCancel, "task-cancel", schemaTaskCancel, rfc.Idempotent, func(req *rfc.Request, _ *wire.Params) wire.Errno {
			cancels <- req.Param(tcParamID).Uint64()
			return wire.OK
		}); err != nil {
			t.Fatal(err)
		}
		mn := startNode(t, s.Listen(1, nil), configAt(time.Hour), []netip.AddrPort{liar.Addr()})
		m := newTestMaster(t, mn.svc)
		task, err := m.Start(ctxFor(t, time.Second), liar.Addr(), 1, nil)
		if errnoOf(err) != wire.EPROTO {
			t.Fatalf("start accepted under incarnation 2^32 + %d: task %+v, %v, want EPROTO", inc, task, err)
		}
		if n := m.InFlight(liar.Addr()); n != 0 || m.Stats().Malformed != 1 {
			t.Errorf("after a malformed start reply: %d in flight, stats %+v, want none and Malformed 1", n, m.Stats())
		}
		select {
		case <-cancels:
		case <-time.After(time.Second):
			t.Errorf("no task-cancel for the start given up on")
		}
	})
}

// TestAttackJoinPageMappedAddrs: a seed's members page that lists the
// joiner itself and a live member in IPv4-mapped form. The engine names
// every sender unmapped, so the joiner held a second copy of the live
// member that RemoveMember of either form could not take out, and held
// itself as a member, probing itself.
func TestAttackJoinPageMappedAddrs(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		cfg := testConfig()
		cfg.AcceptJoins = true
		jep, bep, seed := s.Listen(1, keyed), s.Listen(2, keyed), s.Listen(3, keyed)
		startNode(t, bep, cfg, []netip.AddrPort{jep.Addr()})
		j := startNode(t, jep, cfg, []netip.AddrPort{bep.Addr()})
		mapped := func(a netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		}
		if err := seed.Register(CallJoin, "join", schemaJoin, rfc.Idempotent, func(*rfc.Request, *wire.Params) wire.Errno { return wire.OK }); err != nil {
			t.Fatal(err)
		}
		if err := seed.Register(CallMembers, "members", schemaMembers, rfc.Idempotent, func(_ *rfc.Request, rep *wire.Params) wire.Errno {
			rep.Uint64(0)
			rep.Uint64(3)
			rep.Uint64(uint64(seed.Incarnation()))
			for _, a := range []netip.AddrPort{mapped(jep.Addr()), mapped(bep.Addr())} {
				rep.String(a.String())
				rep.Uint64(0)
				rep.Uint64(uint64(StateAlive))
				rep.Uint64(1)
				rep.Uint64(0)
			}
			return rep.Err()
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * cfg.Interval)
		if err := j.svc.Join(ctxFor(t, 2*time.Second), seed.Addr()); err != nil {
			t.Fatalf("join: %v", err)
		}
		for _, m := range j.svc.Members() {
			if m.Addr.Addr().Is4In6() || m.Addr == jep.Addr() {
				t.Errorf("after the join the joiner holds %v (%+v)", m.Addr, m)
			}
		}
		if err := j.svc.RemoveMember(bep.Addr()); err != nil {
			t.Fatalf("RemoveMember(%v): %v", bep.Addr(), err)
		}
		for _, m := range j.svc.Members() {
			if m.Addr.Addr().Unmap() == bep.Addr().Addr() {
				t.Errorf("after RemoveMember(%v) the joiner still holds %v", bep.Addr(), m.Addr)
			}
		}
	})
}
