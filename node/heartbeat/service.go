package heartbeat

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"fastcall/node/internal/closing"
	"fastcall/rfc"
	"fastcall/wire"
)

// Service is the liveness service of one node. All methods are safe for
// concurrent use.
type Service struct {
	ep   *rfc.Endpoint
	cfg  Config
	log  *slog.Logger
	self uint32 // this node as an observer in updates (observerID)

	mu struct {
		closing.Mutex
		members map[netip.AddrPort]*member // by address
		order   []*member                  // insertion order; removed members leave via the probe loop
		helper  int                        // rotating start of the helper choice for indirect probes
		gen     uint64                     // raised by every AddMember and RemoveMember
		pruned  bool                       // a member was removed: the probe loop compacts order

		bcast       []update  // membership changes to disseminate, oldest first
		touched     []*member // members the probe loop must step at its next tick
		selfRefuted bool      // this node refuted a claim about itself since the loop last looked
		gossipNow   bool      // an update waits that the probe loop gossips at once: a refutation, a suspicion new here

		newsLogAt    int64  // engine clock of the last "declared dead" log line
		newsUnlogged uint64 // such lines left out since
	}

	lmu          sync.Mutex                 // serializes listener changes
	listeners    atomic.Pointer[[]listener] // copy on write
	nextListener int

	// seq numbers the indirect rounds. It starts at the wall clock in
	// Unix ns at Start, so a restarted node gives no round a number its
	// previous process gave: an ack to that process, held in the network
	// or replayed within the age bound, closes no round of this one.
	seq    atomic.Uint64
	events chan Event    // bounded by Config.EventQueue
	relayQ chan relayJob // bounded by Config.RelayQueue
	// Dead members heard alive from another member, for the reprobe
	// loop to probe at once; bounded by checkQueue, overflow left to its
	// round.
	checkQ chan netip.AddrPort
	// wake rouses the probe loop while it sleeps past its next Tick
	// (asleep): work handed to it since it planned the sleep (wakeLoop).
	// One slot: one wake-up covers all the work handed meanwhile.
	wake   chan struct{}
	asleep atomic.Bool
	stats  serviceStats

	done chan struct{}
	wg   sync.WaitGroup
}

// serviceStats are the service's counters.
type serviceStats struct {
	probes, probeFails       atomic.Uint64
	probesSkipped            atomic.Uint64
	indirectSent, relayed    atomic.Uint64
	relayDropped             atomic.Uint64
	suspects, deaths, rejoin atomic.Uint64
	refutations              atomic.Uint64
	eventsDropped            atomic.Uint64
	nonMember                atomic.Uint64
	updatesSent              atomic.Uint64
	updatesHeard, badUpdates atomic.Uint64
	gossipSent, joined       atomic.Uint64
	extra, deferred          atomic.Uint64
	wakes                    atomic.Uint64
	health                   atomic.Int64
}

// Stats is a snapshot of the service's counters.
type Stats struct {
	Probes        uint64 // direct probes sent
	ProbeFails    uint64 // direct probes that failed
	ProbesSkipped uint64 // probes not sent because the member was heard within Interval
	IndirectSent  uint64 // indirect probe requests sent
	Relayed       uint64 // indirect probes run for other members
	RelayDropped  uint64 // indirect probe requests dropped (queue full, unknown target)
	Suspects      uint64 // transitions to suspect
	Deaths        uint64 // transitions to dead
	Rejoins       uint64 // transitions from suspect or dead to alive
	Refutations   uint64 // times this node raised its incarnation to refute
	EventsDropped uint64 // events lost to a full queue
	NonMember     uint64 // heartbeat, probe-request and probe-ack calls from non-members: claims ignored
	UpdatesSent   uint64 // membership updates piggybacked on heartbeats
	UpdatesHeard  uint64 // membership updates received from members
	BadUpdates    uint64 // malformed update parameters (the rest of the parameter dropped)
	GossipSent    uint64 // CallGossip datagrams sent (only while updates wait)
	Joined        uint64 // members added by a join (Config.AcceptJoins)
	Extra         uint64 // datagrams of failure-driven work sent (Config.Budget): indirect requests, probes off the schedule, relays, gossip
	Deferred      uint64 // failure-driven datagrams the budget put off (counted at each tick that tried) or dropped (relays)
	Wakes         uint64 // times the probe loop woke: its ticks, and the wake-ups for work handed to it while it slept
	Health        int    // local health score: timeouts are stretched by 1+Health (0: healthy)
}

// Start starts the liveness service on ep with the given members (this
// node's own address may be listed; it is skipped). It registers the
// heartbeat call numbers on ep, so it can run once per endpoint.
func Start(ep *rfc.Endpoint, cfg Config, members []netip.AddrPort) (*Service, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := cfg.checkEndpoint(ep.Config()); err != nil {
		return nil, err
	}
	s := &Service{ep: ep, cfg: cfg, log: cfg.Logger, self: observerID(ep), done: make(chan struct{})}
	s.seq.Store(uint64(time.Now().UnixNano()))
	if s.log == nil {
		s.log = slog.Default()
	}
	s.events = make(chan Event, cfg.EventQueue)
	s.relayQ = make(chan relayJob, cfg.RelayQueue)
	s.checkQ = make(chan netip.AddrPort, checkQueue)
	s.wake = make(chan struct{}, 1)
	s.mu.members = make(map[netip.AddrPort]*member)
	for _, a := range members {
		if rfc.PeerAddr(a) == ep.Addr() {
			continue
		}
		if err := s.AddMember(a); err != nil && err != wire.EEXIST {
			return nil, err
		}
	}
	calls := []rfc.CallSpec{
		{No: CallHeartbeat, Name: "heartbeat", Schema: schemaHeartbeat, Flags: rfc.Idempotent | rfc.Priority, H: s.serveHeartbeat},
		{No: CallProbeRequest, Name: "probe-request", Schema: schemaProbeRequest, Flags: rfc.Idempotent | rfc.OneWay | rfc.Priority, H: s.serveProbeRequest},
		{No: CallProbeAck, Name: "probe-ack", Schema: schemaProbeAck, Flags: rfc.Idempotent | rfc.OneWay | rfc.Priority, H: s.serveProbeAck},
		{No: CallMembers, Name: "members", Schema: schemaMembers, Flags: rfc.Idempotent, H: s.serveMembers},
		// Gossip and joins take the ordinary queue: a burst of updates
		// never delays the heartbeats on the priority worker.
		{No: CallGossip, Name: "gossip", Schema: schemaGossip, Flags: rfc.Idempotent | rfc.OneWay, H: s.serveGossip},
		{No: CallJoin, Name: "join", Schema: schemaJoin, Flags: rfc.Idempotent, H: s.serveJoin},
	}
	if err := ep.RegisterCalls(calls); err != nil {
		return nil, err
	}
	// Every long-lived goroutine of the service starts here.
	s.wg.Add(3)
	// The incarnation now, before a handler can raise it in a
	// refutation: read later, it would depend on the goroutines' order.
	go s.probeLoop(uint64(s.ep.Incarnation()))
	go s.reprobeLoop()
	go s.eventLoop()
	s.log.Debug("heartbeat up", "addr", ep.Addr().String(), "members", len(members),
		"interval", cfg.Interval.String(), "detect-bound", DetectBound(cfg).String())
	return s, nil
}

// Close stops the service's goroutines and waits for them. The call
// numbers stay registered on the endpoint and answer ECLOSED. Idempotent.
func (s *Service) Close() {
	if !s.mu.LockToClose() {
		return
	}
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
}

// Endpoint returns the endpoint the service runs on.
func (s *Service) Endpoint() *rfc.Endpoint { return s.ep }

// Config returns the configuration the service runs with.
func (s *Service) Config() Config { return s.cfg }

// AddMember adds a member (alive, not yet heard). It returns EEXIST if
// the address is already a member, ENOSPC past Config.MaxMembers, EINVAL
// for an invalid address or this node's own, ECLOSED after Close.
func (s *Service) AddMember(addr netip.AddrPort) error {
	addr = rfc.PeerAddr(addr)
	if !addr.IsValid() || addr == s.ep.Addr() {
		return wire.EINVAL
	}
	now := s.ep.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.addMemberLocked(addr, now)
	return err
}

// addMemberLocked adds addr as an alive member not yet heard (see
// AddMember for the errors).
func (s *Service) addMemberLocked(addr netip.AddrPort, now int64) (*member, error) {
	if s.mu.Closed {
		return nil, wire.ECLOSED
	}
	if m := s.mu.members[addr]; m != nil {
		return m, wire.EEXIST
	}
	if len(s.mu.members) >= s.cfg.MaxMembers && !s.evictLocked(now) {
		return nil, wire.ENOSPC
	}
	m := &member{addr: addr, state: StateAlive, since: now, syncRFC: true}
	// Stagger the cadence so members are not all probed on the same tick.
	m.probeAt = now + int64(s.cfg.Interval)*int64(len(s.mu.order)%8+1)/8
	s.mu.members[addr] = m
	s.mu.order = append(s.mu.order, m)
	s.mu.gen++
	s.touchLocked(m)
	s.emitLocked(Event{Kind: EventAdded, Addr: addr, AtNs: now})
	return m, nil
}

// evictLocked makes room in a full member list: it removes one dead
// member added on the cluster's word and never heard (an address a
// member named that nothing answered on), as RemoveMember would. It
// reports false when there is none: the list is full of members this
// node was configured with or has heard.
func (s *Service) evictLocked(now int64) bool {
	for _, m := range s.mu.order {
		if !m.removed && m.learnt && m.heardNs == 0 && m.state == StateDead && !m.marking {
			s.removeLocked(m, now)
			return true
		}
	}
	return false
}

// joinedLocked adds a member learnt from the cluster (a join request,
// an alive update about an unknown address, a joined node's pull) when
// Config.AcceptJoins is set, with its incarnation and node id node (the
// member's own word: 0 when another member told it, adoptNodeLocked),
// and disseminates it with the node id it holds here. It returns nil
// when the member is not added (joins not accepted, this node's own
// address, the list full).
func (s *Service) joinedLocked(addr netip.AddrPort, node, inc uint32, now int64) *member {
	if !s.cfg.AcceptJoins || !addr.IsValid() || addr == s.ep.Addr() {
		return nil
	}
	m, err := s.addMemberLocked(addr, now)
	if err != nil {
		return nil
	}
	m.inc, m.learnt = inc, true
	s.adoptNodeLocked(m, node)
	s.stats.joined.Add(1)
	s.enqueueLocked(addr, m.node, StateAlive, inc)
	return m
}

// Join makes this node a member of the cluster that seed belongs to:
// it asks seed to add it (CallJoin: seed adds it and disseminates it, so
// every member that accepts joins adds it), then pulls seed's member
// view (CallMembers, every page) and adds every member listed there not
// dead (full state transfer). Seed must run with Config.AcceptJoins;
// otherwise it answers EPERM. It returns the error number of the first
// call that fails.
func (s *Service) Join(ctx context.Context, seed netip.AddrPort) error {
	seed = rfc.PeerAddr(seed)
	if err := s.AddMember(seed); err != nil && err != wire.EEXIST {
		return err
	}
	var ps wire.Params
	ps.Reset(make([]byte, sizeU64Param))
	ps.Uint64(uint64(s.ep.Incarnation()))
	if err := s.ep.Call(ctx, seed, CallJoin, &ps, nil); err != nil {
		return err
	}
	v, err := QueryMembersView(ctx, s.ep, seed)
	if err != nil {
		return err
	}
	now := s.ep.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.mu.members[seed]; m != nil {
		s.adoptNodeLocked(m, v.Node)
	}
	for _, mi := range v.Members {
		if mi.State == StateDead || mi.Addr == s.ep.Addr() {
			continue
		}
		m, err := s.addMemberLocked(mi.Addr, now)
		if err == wire.ENOSPC {
			return err
		}
		if m != nil && m.node == 0 {
			m.inc = max(m.inc, mi.Incarnation)
			s.adoptNodeLocked(m, mi.Node)
		}
	}
	return nil
}

// RemoveMember removes a member; it is no longer probed and its state
// changes are no longer reported. ENOENT if it is not a member.
func (s *Service) RemoveMember(addr netip.AddrPort) error {
	return s.withMember(addr, func(m *member) { s.removeLocked(m, s.ep.Now()) })
}

// withMember runs f on the member at addr with s.mu held; ENOENT if addr
// is not a member. It owns that rule for the methods that change one
// member named by its address (RemoveMember, Pin).
func (s *Service) withMember(addr netip.AddrPort, f func(m *member)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mu.members[rfc.PeerAddr(addr)]
	if m == nil {
		return wire.ENOENT
	}
	f(m)
	return nil
}

// removeLocked removes member m from the list (RemoveMember, evictLocked).
func (s *Service) removeLocked(m *member, now int64) {
	delete(s.mu.members, m.addr)
	m.removed = true // the probe loop releases its probe and drops it
	s.mu.gen++
	s.mu.pruned = true
	s.touchLocked(m)
	s.emitLocked(Event{Kind: EventRemoved, Addr: m.addr, Node: m.node, Incarnation: m.inc, AtNs: now})
}

// Pin makes a member probed on its own cadence every Interval, as in a
// cluster of two, whatever the probe schedule: the heartbeat channel of a
// master/worker pair stays direct between the pair. A Master pins a
// worker when it starts a task there, a Worker pins a master whose task
// it accepts. ENOENT if addr is not a member.
func (s *Service) Pin(addr netip.AddrPort) error {
	return s.withMember(addr, func(m *member) {
		if !m.pinned {
			m.pinned = true
			s.touchLocked(m)
		}
	})
}

// Members returns this node's view of every member.
func (s *Service) Members() []MemberInfo {
	now := s.ep.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MemberInfo, 0, len(s.mu.members))
	for _, m := range s.mu.order {
		if !m.removed {
			out = append(out, m.infoLocked(now))
		}
	}
	return out
}

// Member returns this node's view of one member.
func (s *Service) Member(addr netip.AddrPort) (MemberInfo, bool) {
	addr = rfc.PeerAddr(addr)
	now := s.ep.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mu.members[addr]
	if m == nil {
		return MemberInfo{Addr: addr}, false
	}
	return m.infoLocked(now), true
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	st := &s.stats
	return Stats{
		Probes: st.probes.Load(), ProbeFails: st.probeFails.Load(), ProbesSkipped: st.probesSkipped.Load(),
		IndirectSent: st.indirectSent.Load(), Relayed: st.relayed.Load(), RelayDropped: st.relayDropped.Load(),
		Suspects: st.suspects.Load(), Deaths: st.deaths.Load(), Rejoins: st.rejoin.Load(),
		Refutations: st.refutations.Load(), EventsDropped: st.eventsDropped.Load(), NonMember: st.nonMember.Load(),
		UpdatesSent: st.updatesSent.Load(), UpdatesHeard: st.updatesHeard.Load(), BadUpdates: st.badUpdates.Load(),
		GossipSent: st.gossipSent.Load(), Joined: st.joined.Load(),
		Extra: st.extra.Load(), Deferred: st.deferred.Load(), Wakes: st.wakes.Load(),
		Health: int(st.health.Load()),
	}
}

// observerID names ep's node as the observer of a suspicion or a death
// in updates: its node id, or, for a node without one, a hash of its
// address (never 0, which means unknown).
func observerID(ep *rfc.Endpoint) uint32 {
	if id := ep.NodeID(); id != 0 {
		return id
	}
	a := ep.Addr().Addr().As16()
	h := uint32(xxhash.Sum64(a[:]) ^ uint64(ep.Addr().Port())<<7)
	if h == 0 {
		h = 1
	}
	return h
}

// lookupLocked finds the member a datagram came from: by address, else
// by node id (a member seen through a relay or a second socket).
func (s *Service) lookupLocked(addr netip.AddrPort, node uint32) *member {
	if m := s.mu.members[addr]; m != nil {
		return m
	}
	if node == 0 {
		return nil
	}
	for _, m := range s.mu.order {
		if !m.removed && m.node == node {
			return m
		}
	}
	return nil
}
