package heartbeat

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"fastcall/rfc"
	"fastcall/wire"
)

// Service is the liveness service of one node. All methods are safe for
// concurrent use.
type Service struct {
	ep  *rfc.Endpoint
	cfg Config
	log *slog.Logger

	mu struct {
		sync.Mutex
		members map[netip.AddrPort]*member // by address
		order   []*member                  // insertion order; removed members leave via the probe loop
		closed  bool
		helper  int // rotating start of the helper choice for indirect probes

		newsLogAt    int64  // engine clock of the last "declared dead" log line
		newsUnlogged uint64 // such lines left out since
	}

	lmu          sync.Mutex                 // serializes listener changes
	listeners    atomic.Pointer[[]listener] // copy on write
	nextListener int

	seq    atomic.Uint64 // indirect-round sequence numbers
	events chan Event    // bounded by Config.EventQueue
	relayQ chan relayJob // bounded by Config.RelayQueue
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
}

// Start starts the liveness service on ep with the given members (this
// node's own address may be listed; it is skipped). It registers the
// heartbeat call numbers on ep, so it can run once per endpoint.
func Start(ep *rfc.Endpoint, cfg Config, members []netip.AddrPort) (*Service, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Service{ep: ep, cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.events = make(chan Event, cfg.EventQueue)
	s.relayQ = make(chan relayJob, cfg.RelayQueue)
	s.mu.members = make(map[netip.AddrPort]*member)
	for _, a := range members {
		if a == ep.Addr() {
			continue
		}
		if err := s.AddMember(a); err != nil && err != wire.EEXIST {
			return nil, err
		}
	}
	type reg struct {
		no     uint16
		name   string
		schema wire.Schema
		flags  rfc.CallFlags
		h      rfc.Handler
	}
	regs := [...]reg{
		{CallHeartbeat, "heartbeat", schemaHeartbeat, rfc.Idempotent | rfc.Priority, s.serveHeartbeat},
		{CallProbeRequest, "probe-request", schemaProbeRequest, rfc.Idempotent | rfc.OneWay | rfc.Priority, s.serveProbeRequest},
		{CallProbeAck, "probe-ack", schemaProbeAck, rfc.Idempotent | rfc.OneWay | rfc.Priority, s.serveProbeAck},
		{CallMembers, "members", schemaMembers, rfc.Idempotent, s.serveMembers},
	}
	for _, r := range regs {
		if err := ep.Register(r.no, r.name, r.schema, r.flags, r.h); err != nil {
			return nil, err
		}
	}
	// Every long-lived goroutine of the service starts here.
	s.wg.Add(3)
	go s.probeLoop()
	go s.reprobeLoop()
	go s.eventLoop()
	s.log.Debug("heartbeat up", "addr", ep.Addr().String(), "members", len(members),
		"interval", cfg.Interval.String(), "detect-bound", DetectBound(cfg).String())
	return s, nil
}

// Close stops the service's goroutines and waits for them. The call
// numbers stay registered on the endpoint and answer ECLOSED. Idempotent.
func (s *Service) Close() {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return
	}
	s.mu.closed = true
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
	if !addr.IsValid() || addr == s.ep.Addr() {
		return wire.EINVAL
	}
	now := s.ep.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return wire.ECLOSED
	}
	if m := s.mu.members[addr]; m != nil {
		return wire.EEXIST
	}
	if len(s.mu.members) >= s.cfg.MaxMembers {
		return wire.ENOSPC
	}
	m := &member{addr: addr, state: StateAlive, since: now, syncRFC: true}
	// Stagger the cadence so members are not all probed on the same tick.
	m.probeAt = now + int64(s.cfg.Interval)*int64(len(s.mu.order)%8+1)/8
	s.mu.members[addr] = m
	s.mu.order = append(s.mu.order, m)
	s.emitLocked(Event{Kind: EventAdded, Addr: addr, AtNs: now})
	return nil
}

// RemoveMember removes a member; it is no longer probed and its state
// changes are no longer reported. ENOENT if it is not a member.
func (s *Service) RemoveMember(addr netip.AddrPort) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mu.members[addr]
	if m == nil {
		return wire.ENOENT
	}
	delete(s.mu.members, addr)
	m.removed = true // the probe loop releases its probe and drops it
	s.emitLocked(Event{Kind: EventRemoved, Addr: addr, Node: m.node, Incarnation: m.inc, AtNs: s.ep.Now()})
	return nil
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
	}
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
