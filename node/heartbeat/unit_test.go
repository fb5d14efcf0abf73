package heartbeat

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

func TestConfigCheck(t *testing.T) {
	rfctest.ConfigCases(t, "heartbeat", DefaultConfig, (*Config).check, []rfctest.ConfigCase[Config]{
		{Name: "default", Mod: func(*Config) {}, Field: ""},
		{Name: "interval", Mod: func(c *Config) { c.Interval = 0 }, Field: "Interval"},
		{Name: "probe-timeout", Mod: func(c *Config) { c.ProbeTimeout = c.Interval }, Field: "ProbeTimeout"},
		{Name: "round", Mod: func(c *Config) { c.RoundTimeout = c.ProbeTimeout - 1 }, Field: "RoundTimeout"},
		{Name: "suspect-after", Mod: func(c *Config) { c.SuspectAfter = 0 }, Field: "SuspectAfter"},
		{Name: "suspicion-min", Mod: func(c *Config) { c.SuspicionMin = 0 }, Field: "SuspicionMin"},
		{Name: "suspicion-max", Mod: func(c *Config) { c.SuspicionMaxMult = 0 }, Field: "SuspicionMaxMult"},
		{Name: "confirmations", Mod: func(c *Config) { c.Confirmations = maxConfirm + 1 }, Field: "Confirmations"},
		{Name: "gossip-nodes", Mod: func(c *Config) { c.GossipNodes = 17 }, Field: "GossipNodes"},
		{Name: "gossip-interval", Mod: func(c *Config) { c.GossipInterval = 0 }, Field: "GossipInterval"},
		{Name: "indirect", Mod: func(c *Config) { c.IndirectProbes = 17 }, Field: "IndirectProbes"},
		{Name: "reprobe", Mod: func(c *Config) { c.ReprobeInterval = c.Interval - 1 }, Field: "ReprobeInterval"},
		{Name: "tick", Mod: func(c *Config) { c.Tick = 2 * c.Interval }, Field: "Tick"},
		{Name: "members", Mod: func(c *Config) { c.MaxMembers = 0 }, Field: "MaxMembers"},
		{Name: "events", Mod: func(c *Config) { c.EventQueue = 0 }, Field: "EventQueue"},
		{Name: "relay", Mod: func(c *Config) { c.RelayQueue = 0 }, Field: "RelayQueue"},
	})
}

func TestDetectBound(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want time.Duration
	}{
		// 2I + (S-1)I + I/2 + 3I/4 (round) + 2*I/2 (suspicion, no
		// confirmation) + 2*I/10 = 4.45I
		{"default", DefaultConfig(), 890 * time.Millisecond},
		{"100ms", DefaultConfig().WithInterval(100 * time.Millisecond), 445 * time.Millisecond},
		{"slow", func() Config {
			c := DefaultConfig().WithInterval(time.Second)
			c.SuspectAfter, c.SuspicionMaxMult = 3, 2
			return c
		}(), 2*time.Second + 2*time.Second + 500*time.Millisecond + 750*time.Millisecond + time.Second + 200*time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectBound(tc.cfg); got != tc.want {
				t.Fatalf("DetectBound = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDetectBoundAt: past ProbesPerInterval+1 members the first-probe
// term grows by one pass of the probe schedule's round-robin and a Tick,
// and past 10 members the suspicion timeout grows with log10(n).
func TestDetectBoundAt(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		// n = 1 and 2: no other member can confirm: the shortest timeout.
		{1, 790 * time.Millisecond},
		{3, 890 * time.Millisecond},
		// I + (5I/2 + I/10) + I/2 + 3I/4 + 2*I/2 + 2*I/10
		{6, 1210 * time.Millisecond},
		// I + (63I/2 + I/10) + I/2 + 3I/4 + 2*(I/2)*log10(64) + 2*I/10
		{64, 6810*time.Millisecond + 2*time.Duration(float64(100*time.Millisecond)*math.Log10(64))},
	} {
		if got := DetectBoundAt(c, tc.n); got != tc.want {
			t.Fatalf("DetectBoundAt(n=%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestStateStrings(t *testing.T) {
	for s, want := range map[State]string{StateAlive: "alive", StateSuspect: "suspect", StateDead: "dead", 9: "?"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
	for k := EventAlive; k <= EventDeclaredDeadBy; k++ {
		if k.String() == "?" {
			t.Errorf("event kind %d has no name", k)
		}
	}
}

// TestHeardAgoNeverNegative: Members and the mem-list handler read the
// clock before they take the service lock, so a reply recorded while they
// waited is later than their now. That age is 0; a negative one reads as
// "never heard" in MemberInfo and on the wire (TestAliveAndMembers saw it).
func TestHeardAgoNeverNegative(t *testing.T) {
	m := &member{}
	if got := m.heardAgo(100); got != -1 {
		t.Fatalf("never heard: %v, want -1", got)
	}
	m.heardNs = 1000
	for _, c := range []struct {
		now  int64
		want time.Duration
	}{{1500, 500}, {1000, 0}, {990, 0}} {
		if got := m.heardAgo(c.now); got != c.want {
			t.Errorf("heard at 1000, now %d: %v, want %v", c.now, got, c.want)
		}
	}
}

// mapped returns a in the IPv4-mapped IPv6 form.
func mapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
}

func TestMembership(t *testing.T) {
	ep := newEndpoint(t, 1, nil)
	other := netip.MustParseAddrPort("127.0.0.1:9")
	tests := []struct {
		name string
		op   func(s *Service) error
		want wire.Errno
	}{
		{"add", func(s *Service) error { return s.AddMember(other) }, wire.OK},
		{"add-again", func(s *Service) error { return s.AddMember(other) }, wire.EEXIST},
		// The IPv4-mapped form is the same address (the engine unmaps
		// the address a datagram comes from): before, it was a second
		// member beside the IPv4 one, and this node's own address in
		// that form was added as a member.
		{"add-again-mapped", func(s *Service) error { return s.AddMember(mapped(other)) }, wire.EEXIST},
		{"add-self", func(s *Service) error { return s.AddMember(ep.Addr()) }, wire.EINVAL},
		{"add-self-mapped", func(s *Service) error { return s.AddMember(mapped(ep.Addr())) }, wire.EINVAL},
		{"pin-mapped", func(s *Service) error { return s.Pin(mapped(other)) }, wire.OK},
		{"add-invalid", func(s *Service) error { return s.AddMember(netip.AddrPort{}) }, wire.EINVAL},
		{"remove", func(s *Service) error { return s.RemoveMember(other) }, wire.OK},
		{"remove-again", func(s *Service) error { return s.RemoveMember(other) }, wire.ENOENT},
	}
	n := startNode(t, ep, testConfig(), nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire.AsErrno(tc.op(n.svc)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := Start(ep, testConfig(), nil); wire.AsErrno(err) != wire.EEXIST {
		t.Fatalf("second Start on one endpoint: %v, want EEXIST", err)
	}
}

// TestAliveAndMembers: a quiet cluster stays alive, and CallMembers
// reports each node's view, over several pages when the datagram is
// small.
func TestAliveAndMembers(t *testing.T) {
	// The default interval: at shorter ones a loaded machine makes probes
	// time out and members suspect each other.
	cfg := DefaultConfig()
	cfg.Logger = quiet
	nodes := cluster(t, 3, cfg)
	// Six probe periods on every node, by its own count: each member
	// probed or was heard within the period, six times.
	for i, n := range nodes {
		if !waitFor(30*time.Second, func() bool { st := n.svc.Stats(); return st.Probes+st.ProbesSkipped >= 6*2 }) {
			t.Fatalf("node %d: %+v", i, n.svc.Stats())
		}
	}
	for i, n := range nodes {
		for _, m := range n.svc.Members() {
			if m.State != StateAlive || m.Node == 0 || m.HeardAgo < 0 {
				t.Errorf("node %d sees %+v", i, m)
			}
		}
		if st := n.svc.Stats(); st.Deaths != 0 || st.Suspects != 0 {
			t.Errorf("node %d: %+v", i, st)
		}
	}
	cli := newEndpoint(t, 0, nil)
	view, err := QueryMembersView(ctxFor(t, 2*time.Second), cli, nodes[0].ep.Addr())
	if err != nil {
		t.Fatalf("QueryMembers: %v", err)
	}
	if view.Node != 1 || len(view.Members) != 2 || view.Incarnation != nodes[0].ep.Incarnation() {
		t.Fatalf("view %+v", view)
	}

	// Paging: many members behind a small datagram limit.
	small := func(c *rfc.Config) { c.MaxDatagram = 300 }
	ep := newEndpoint(t, 9, small)
	var addrs []netip.AddrPort
	for i := 0; i < 20; i++ {
		addrs = append(addrs, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(20000+i)))
	}
	startNode(t, ep, testConfig(), addrs)
	cli2 := newEndpoint(t, 0, small)
	ms, err := QueryMembers(ctxFor(t, 2*time.Second), cli2, ep.Addr())
	if err != nil {
		t.Fatalf("QueryMembers paged: %v", err)
	}
	if len(ms) != len(addrs) {
		t.Fatalf("paged: %d members, want %d", len(ms), len(addrs))
	}
	for i, m := range ms {
		if m.Addr != addrs[i] {
			t.Fatalf("member %d: %v, want %v", i, m.Addr, addrs[i])
		}
	}
}

// TestDeadOnClose: a member whose endpoint closes is declared dead, a
// call parked on it fails with ENODEAD long before its own deadline, and
// new calls fail fast. Each survivor goes through the stages the bound is
// made of, on the engine clock: suspect no sooner than a probe timeout
// and a round timeout after the last datagram heard, after exactly one
// indirect round (one indirect probe, through the one other survivor),
// dead no sooner than the shortest suspicion timeout after the suspicion.
// While it suspects the member on its own evidence a survivor opens a
// round beside each probe that tells the member (at the suspicion's
// start, then every Interval: suspectRoundLocked); the timer here is one
// Interval, so one such round, two at a local health of one. The cluster
// runs at the default interval, so that the survivors do not suspect each
// other on a loaded machine.
func TestDeadOnClose(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = quiet
	nodes := cluster(t, 3, cfg)
	victim := nodes[2].ep.Addr()
	for _, n := range nodes[:2] {
		waitHeard(t, n, victim, 10*time.Second)
	}
	// Park a call on the victim: a request to an unregistered number on a
	// closed socket gets no answer.
	nodes[2].svc.Close()
	nodes[2].ep.Close()
	p, err := nodes[0].ep.Go(ctxFor(t, 30*time.Second), victim, wire.CallUserBase, nil)
	if err != nil {
		t.Fatalf("Go: %v", err)
	}
	defer p.Release()
	if err := p.Wait(); wire.AsErrno(err) != wire.ENODEAD {
		t.Fatalf("parked call: %v, want ENODEAD", err)
	}
	if err := nodes[0].ep.Call(ctxFor(t, time.Second), victim, wire.CallUserBase, nil, nil); wire.AsErrno(err) != wire.ENODEAD {
		t.Fatalf("new call: %v, want ENODEAD", err)
	}
	at := func(n *node, kind EventKind) int64 {
		n.log.mu.Lock()
		defer n.log.mu.Unlock()
		for _, ev := range n.log.evs {
			if ev.Kind == kind && ev.Addr == victim {
				return ev.AtNs
			}
		}
		return 0
	}
	for i := 0; i < 2; i++ {
		n := nodes[i]
		if !waitFor(10*DetectBound(cfg), func() bool { return stateOf(n.svc, victim) == StateDead }) {
			t.Fatalf("node %d: victim %v", i, stateOf(n.svc, victim))
		}
		if !waitFor(time.Second, func() bool { return n.log.count(EventDead, victim) == 1 }) ||
			n.log.count(EventSuspect, victim) != 1 {
			t.Fatalf("node %d events: %+v", i, n.log.evs)
		}
		info, _ := n.ep.Peer(victim)
		heard, suspect, dead := info.LastHeardNs, at(n, EventSuspect), at(n, EventDead)
		if suspect-heard < int64(cfg.ProbeTimeout+cfg.RoundTimeout) {
			t.Errorf("node %d suspected the victim %v after it last heard it, want at least %v",
				i, time.Duration(suspect-heard), cfg.ProbeTimeout+cfg.RoundTimeout)
		}
		if lo := suspicionMin(&cfg, 3); dead-suspect < int64(lo) {
			t.Errorf("node %d declared the victim dead %v after suspecting it, want at least %v",
				i, time.Duration(dead-suspect), lo)
		}
		if st := n.svc.Stats(); st.IndirectSent > 3 || st.Suspects != 1 || st.Deaths != 1 {
			t.Errorf("node %d: %d indirect probes, %d suspicions, %d deaths, want at most 3, 1, 1: %+v",
				i, st.IndirectSent, st.Suspects, st.Deaths, st)
		}
	}
	// The survivors still see each other alive.
	if stateOf(nodes[0].svc, nodes[1].ep.Addr()) != StateAlive {
		t.Fatal("survivor not alive")
	}
}

// TestRefutation: a node told by a member that it is suspected at its own incarnation
// raises it and says so in the reply; told it is dead, it reports the
// news as an event once.
func TestRefutation(t *testing.T) {
	a, b := pair(t)
	// Only a member's claims count: cli is a member of b, with a service
	// of its own so that b's probes of it succeed.
	cli := newEndpoint(t, 77, nil)
	startNode(t, cli, testConfig(), []netip.AddrPort{b.ep.Addr()})
	if err := b.svc.AddMember(cli.Addr()); err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	var rep rfc.Reply
	call := func(vs State, vi uint32) (uint32, State) {
		var ps wire.Params
		heartbeatParams(&ps, make([]byte, 64), cli.Incarnation(), view{state: vs, inc: vi}, nil)
		if err := cli.Call(ctxFor(t, time.Second), b.ep.Addr(), CallHeartbeat, &ps, &rep); err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		inc, rv := probeReply(&rep.Packet)
		return inc, rv.state
	}
	tests := []struct {
		name  string
		vs    State
		delta int64 // view incarnation relative to b's current one
		raise bool
		kind  EventKind
	}{
		{"alive", StateAlive, 0, false, 0},
		{"old-suspicion", StateSuspect, -1, false, 0},
		{"suspect", StateSuspect, 0, true, EventSuspectedBy},
		{"dead", StateDead, 0, true, EventDeclaredDeadBy},
		{"dead-above", StateDead, 5, true, EventDeclaredDeadBy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := b.ep.Incarnation()
			nb := 0
			if tc.kind != 0 {
				nb = b.log.count(tc.kind, netip.AddrPort{})
			}
			inc, rvs := call(tc.vs, uint32(int64(before)+tc.delta))
			if rvs != StateAlive {
				t.Fatalf("view of caller: %v", rvs)
			}
			want := before
			if tc.raise {
				want = uint32(int64(before)+tc.delta) + 1
			}
			if inc != want || b.ep.Incarnation() != want {
				t.Fatalf("incarnation %d (endpoint %d), want %d", inc, b.ep.Incarnation(), want)
			}
			if tc.kind != 0 && !waitFor(10*time.Second, func() bool { return b.log.count(tc.kind, netip.AddrPort{}) == nb+1 }) {
				t.Fatalf("no %v event", tc.kind)
			}
		})
	}
	// The other member sees b alive throughout, at its new incarnation.
	if !waitFor(10*time.Second, func() bool {
		info, _ := a.svc.Member(b.ep.Addr())
		return info.State == StateAlive && info.Incarnation == b.ep.Incarnation()
	}) {
		info, _ := a.svc.Member(b.ep.Addr())
		t.Fatalf("a sees b as %+v, b at %d", info, b.ep.Incarnation())
	}
}

// TestCloseDeliversQueuedEvents: an event queued before Close is
// delivered by the time Close returns, every time (the event loop used to
// pick between a queued event and Close at random, so a run did not
// replay).
func TestCloseDeliversQueuedEvents(t *testing.T) {
	cfg := testConfig()
	other := newEndpoint(t, 2, nil).Addr()
	for i := 0; i < 100; i++ {
		ep := newEndpoint(t, 1, nil)
		svc, err := Start(ep, cfg, nil)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		log := new(eventLog)
		svc.OnEvent(log.add)
		if err := svc.AddMember(other); err != nil {
			svc.Close()
			t.Fatalf("AddMember: %v", err)
		}
		svc.Close()
		ep.Close()
		if n := log.count(EventAdded, other); n != 1 {
			t.Fatalf("run %d: %d EventAdded delivered by Close, want 1", i, n)
		}
	}
}
