package heartbeat

import (
	"log/slog"
	"math"
	"time"

	"fastcall/rfc"
)

// Config configures a Service. Start from DefaultConfig (or
// DefaultConfig().WithInterval(d)) and change what you need; Start refuses
// out-of-range values with an *rfc.ConfigError carrying EINVAL.
type Config struct {
	// Interval is the probe period (default 200ms, 1ms to 24h): a member not heard
	// from (any datagram) within Interval is probed.
	Interval time.Duration
	// ProbeTimeout is the deadline of one probe (default Interval/2).
	// The engine retransmits within it, so a lossy link still answers.
	// Must be below Interval.
	ProbeTimeout time.Duration
	// RoundTimeout is how long an indirect round (a direct probe plus
	// IndirectProbes indirect ones, opened when SuspectAfter direct
	// probes in a row have failed) waits for any sign of life before
	// the member becomes suspect here (default 3·Interval/4, so that the
	// helpers' probes, ProbeTimeout long, end within it). Must be at
	// least ProbeTimeout.
	RoundTimeout time.Duration
	// SuspectAfter is how many direct probes in a row must fail before
	// an indirect round opens (default 1).
	SuspectAfter int
	// IndirectProbes is how many other members are asked to probe a
	// member in an indirect round (default 3; 0 disables indirect
	// probes).
	IndirectProbes int
	// SuspicionMin is the shortest suspicion timeout in a cluster of
	// ten members or fewer (default Interval/2); in a cluster of n it is
	// SuspicionMin·log10(n). A suspect member not heard above the
	// suspected incarnation within its suspicion timeout is declared
	// dead (see suspicionTimeout).
	SuspicionMin time.Duration
	// SuspicionMaxMult is β: a suspicion starts at β times the shortest
	// timeout and shrinks toward it as other members confirm it
	// (default 2).
	SuspicionMaxMult int
	// Confirmations is k: the independent suspicions (from distinct
	// members) that shrink a suspicion timeout to its shortest
	// (default 2; at most n-2 in a cluster of n).
	Confirmations int
	// ProbesPerInterval is how many members chosen by the probe schedule
	// (a shuffled round-robin over the member list) are probed each
	// Interval (default 2), whatever the number of members. A member
	// whose probe failed, a member this node suspects on its own
	// evidence and a pinned member (a master/worker pair) are probed
	// every Interval besides.
	ProbesPerInterval int
	// Retransmit is λ in the dissemination bound: a membership update is
	// sent (piggybacked or gossiped) at most Retransmit·⌈log2(N+2)⌉
	// times (default 3; 0 disables dissemination).
	Retransmit int
	// GossipNodes is how many members, chosen at random, get a
	// CallGossip datagram every GossipInterval while updates wait to be
	// sent (default 3; 0: updates ride on heartbeats only). No gossip
	// datagram is sent when there is nothing to disseminate.
	GossipNodes int
	// GossipInterval is the gossip period (default Interval/2),
	// stretched by the local health.
	GossipInterval time.Duration
	// AcceptJoins lets a node join through this one (CallJoin, see
	// Service.Join) and lets an alive update about an address that is
	// not a member add it. Off by default: membership is then exactly
	// what Start, AddMember and RemoveMember say. It needs a cluster key
	// (rfc.Config.Key) on the endpoint, so that only cluster nodes can
	// join: Start refuses it on an endpoint without one (checkEndpoint).
	AcceptJoins bool
	// ReprobeInterval is how often a dead member is probed so that a
	// partition heals (default 5*Interval).
	ReprobeInterval time.Duration
	// Tick is the probe loop's granularity (default Interval/10, at
	// least 1ms): it ticks at points Tick apart, at every point while
	// anything needs stepping (a probe in flight, a failure, a suspect,
	// work handed to it), else only at the first point at or after its
	// next due event (a probe slot, a probe or gossip due). Detection
	// bounds include one Tick.
	Tick time.Duration
	// MaxMembers bounds the member list (default 1024).
	MaxMembers int
	// EventQueue bounds the events waiting for listeners (default 1024).
	// When full, further events are dropped and counted.
	EventQueue int
	// RelayQueue bounds the indirect probes this member runs for others
	// at once (default 64). Requests past it are dropped and counted.
	RelayQueue int
	// Budget bounds the datagrams per Interval that failures cause
	// (default 16; 0: no bound): indirect rounds, probes off the
	// schedule (a member whose probe failed, a suspect, a suspicion
	// heard, a member back from the dead), indirect probes run for
	// others and gossip datagrams. It is divided by (1+Health)², so
	// that a member starved of CPU adds less work the later it runs; the
	// schedule's own probes, and members probed on their own cadence
	// (pinned, a small cluster), do not draw from it. Work past it waits
	// for a later tick (a relay asked for is dropped). At least
	// IndirectProbes+1, so that one indirect round fits.
	Budget int
	// Logger receives state changes; nil means slog.Default(). Nothing is
	// logged per probe.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultInterval       = 200 * time.Millisecond
	DefaultSuspectAfter   = 1
	DefaultIndirectProbes = 3
	DefaultSuspicionMax   = 2
	DefaultConfirmations  = 2
	DefaultProbes         = 2
	DefaultRetransmit     = 3
	DefaultGossipNodes    = 3
	DefaultMaxMembers     = 1024
	DefaultEventQueue     = 1024
	DefaultRelayQueue     = 64
	DefaultBudget         = 16

	minTick = time.Millisecond
	// maxInterval bounds Interval: the timers derived from it (five
	// intervals between reprobes, suspicion up to SuspicionMaxMult
	// times its minimum, stretched by the health score) stay far from
	// overflowing a time.Duration.
	maxInterval = 24 * time.Hour
)

// DefaultConfig returns the documented defaults (Interval 200ms).
func DefaultConfig() Config {
	c := Config{
		SuspectAfter:      DefaultSuspectAfter,
		IndirectProbes:    DefaultIndirectProbes,
		SuspicionMaxMult:  DefaultSuspicionMax,
		Confirmations:     DefaultConfirmations,
		ProbesPerInterval: DefaultProbes,
		Retransmit:        DefaultRetransmit,
		GossipNodes:       DefaultGossipNodes,
		MaxMembers:        DefaultMaxMembers,
		EventQueue:        DefaultEventQueue,
		RelayQueue:        DefaultRelayQueue,
		Budget:            DefaultBudget,
	}
	return c.WithInterval(DefaultInterval)
}

// WithInterval returns c with Interval set to d and the timers derived
// from it reset to their default ratios: ProbeTimeout d/2, RoundTimeout 3d/4,
// SuspicionMin d/2, GossipInterval d/2, ReprobeInterval 5d, Tick d/10
// (at least 1ms).
func (c Config) WithInterval(d time.Duration) Config {
	c.Interval = d
	c.ProbeTimeout = d / 2
	c.RoundTimeout = 3 * d / 4
	c.SuspicionMin = d / 2
	c.GossipInterval = d / 2
	c.ReprobeInterval = 5 * d
	c.Tick = d / 10
	if c.Tick < minTick {
		c.Tick = minTick
	}
	return c
}

func (c *Config) check() error {
	bad := func(f string, v any, why string) error { return rfc.BadConfig("heartbeat", f, v, why) }
	switch {
	case c.Interval < minTick:
		return bad("Interval", c.Interval, "must be at least 1ms")
	case c.Interval > maxInterval:
		return bad("Interval", c.Interval, "must be at most "+maxInterval.String())
	case c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.Interval:
		return bad("ProbeTimeout", c.ProbeTimeout, "must be positive and below Interval")
	case c.RoundTimeout < c.ProbeTimeout:
		return bad("RoundTimeout", c.RoundTimeout, "must be at least ProbeTimeout")
	case c.SuspectAfter < 1:
		return bad("SuspectAfter", c.SuspectAfter, "must be at least 1")
	case c.IndirectProbes < 0 || c.IndirectProbes > 16:
		return bad("IndirectProbes", c.IndirectProbes, "must be between 0 and 16")
	case c.SuspicionMin <= 0:
		return bad("SuspicionMin", c.SuspicionMin, "must be positive")
	case c.SuspicionMaxMult < 1 || c.SuspicionMaxMult > 64:
		return bad("SuspicionMaxMult", c.SuspicionMaxMult, "must be between 1 and 64")
	case c.Confirmations < 0 || c.Confirmations > maxConfirm:
		return bad("Confirmations", c.Confirmations, "must be between 0 and 8")
	case c.GossipNodes < 0 || c.GossipNodes > 16:
		return bad("GossipNodes", c.GossipNodes, "must be between 0 and 16")
	case c.ProbesPerInterval < 1 || c.ProbesPerInterval > 64:
		return bad("ProbesPerInterval", c.ProbesPerInterval, "must be between 1 and 64")
	case c.Retransmit < 0 || c.Retransmit > 64:
		return bad("Retransmit", c.Retransmit, "must be between 0 and 64")
	case c.ReprobeInterval < c.Interval:
		return bad("ReprobeInterval", c.ReprobeInterval, "must be at least Interval")
	case c.Tick < minTick || c.Tick > c.Interval:
		return bad("Tick", c.Tick, "must be between 1ms and Interval")
	case c.GossipNodes > 0 && (c.GossipInterval < c.Tick || c.GossipInterval > c.Interval):
		return bad("GossipInterval", c.GossipInterval, "must be between Tick and Interval")
	case c.MaxMembers < 1 || c.MaxMembers > 1<<16:
		return bad("MaxMembers", c.MaxMembers, "must be between 1 and 65536")
	case c.EventQueue < 1 || c.EventQueue > 1<<20:
		return bad("EventQueue", c.EventQueue, "must be between 1 and 1048576")
	case c.RelayQueue < 1 || c.RelayQueue > 1<<16:
		return bad("RelayQueue", c.RelayQueue, "must be between 1 and 65536")
	case c.Budget != 0 && (c.Budget < c.IndirectProbes+1 || c.Budget > 1<<16):
		return bad("Budget", c.Budget, "must be 0 or between IndirectProbes+1 and 65536")
	}
	return nil
}

// checkEndpoint checks c against the configuration of the endpoint it
// runs on. AcceptJoins needs a cluster key: in checksum mode anyone can
// send a join or an alive update from any address, and every member
// would add the address and probe it (a member list filled, a victim
// flooded).
func (c *Config) checkEndpoint(rc rfc.Config) error {
	if c.AcceptJoins && len(rc.Key) == 0 {
		return rfc.BadConfig("heartbeat", "AcceptJoins", c.AcceptJoins, "needs a cluster key (rfc.Config.Key) on the endpoint")
	}
	return nil
}

// DetectBound is DetectBoundAt(c, c.ProbesPerInterval+1): the bound in a
// cluster small enough that every member is probed on its own cadence
// every Interval, and the bound for a pinned member at any size.
func DetectBound(c Config) time.Duration {
	return DetectBoundAt(c, c.ProbesPerInterval+1)
}

// DetectBoundAt is the longest time from the last datagram heard from a
// member that stopped to its declaration as dead by a member at local
// health 0 (see Stats.Health), in a cluster of n members this node
// included, for configuration c, whatever dissemination brings:
//
//	first probe      at most Interval + G after the last datagram, G
//	                 being the longest gap between two probes of one
//	                 member: Interval in a cluster of ProbesPerInterval+1
//	                 or fewer; otherwise one pass of the probe schedule's
//	                 round-robin, (n-1)/ProbesPerInterval Intervals, plus
//	                 a Tick (a probe goes out once the member has been
//	                 silent for a full Interval)
//	indirect round   (SuspectAfter-1)*Interval + ProbeTimeout later (a
//	                 member whose probe failed is probed every Interval)
//	suspect          RoundTimeout later
//	dead             the longest suspicion timeout later (no
//	                 confirmation: SuspicionMaxMult·suspicionMin(n)), or
//	                 from three members on, ProbeTimeout + Tick if
//	                 that is longer (below)
//	plus two Ticks of loop granularity.
//
// A suspicion heard from another member starts the timer sooner; it ends
// in a death only once a probe of this node's own has failed too, and
// the member is probed when the suspicion is heard (at once in a cluster
// of ProbesPerInterval+1 or fewer and for a pinned member; otherwise at
// the latest moment whose failed probe still ends the timer on time,
// ProbeTimeout + Tick before it runs out), so a heard suspicion ends at
// most the longer of its timeout and ProbeTimeout + Tick after it began
// here: it never delays the verdict past the bound. The member list changing restarts the
// round-robin in a new order, so one gap across that change may reach
// two passes. In a large cluster the usual detection time is set by
// dissemination, not by this bound (docs/HEARTBEAT.md, Measured). It is a
// pure function of c and n so that it can be table-tested and printed.
func DetectBoundAt(c Config, n int) time.Duration {
	gap := c.Interval
	if n-1 > c.ProbesPerInterval {
		gap = time.Duration(n-1)*c.Interval/time.Duration(c.ProbesPerInterval) + c.Tick
	}
	susp := suspicionTimeout(&c, n, 0)
	if n >= 3 {
		// A suspicion can be heard only from a third member.
		susp = max(susp, c.ProbeTimeout+c.Tick)
	}
	return c.Interval + gap + time.Duration(c.SuspectAfter-1)*c.Interval + c.ProbeTimeout +
		c.RoundTimeout + susp + 2*c.Tick
}

// maxConfirm bounds Config.Confirmations (the distinct confirmers a
// suspicion records).
const maxConfirm = 8

// suspicionMin is the shortest suspicion timeout in a cluster of n
// members: SuspicionMin·max(1, log10(n)).
func suspicionMin(c *Config, n int) time.Duration {
	f := 1.0
	if n > 10 {
		f = math.Log10(float64(n))
	}
	return time.Duration(float64(c.SuspicionMin) * f)
}

// suspicionTimeout is the suspicion timeout in a cluster of n members
// after conf independent confirmations (Lifeguard): it starts at
// max = SuspicionMaxMult·min and falls as
//
//	max − (max−min)·log(conf+1)/log(k+1)
//
// to min once k = min(Confirmations, n−2) have arrived; with k < 1 (no
// other member could confirm) it is min.
func suspicionTimeout(c *Config, n, conf int) time.Duration {
	lo := suspicionMin(c, n)
	hi := lo * time.Duration(c.SuspicionMaxMult)
	k := min(c.Confirmations, n-2)
	if k < 1 || conf >= k {
		return lo
	}
	frac := math.Log(float64(conf+1)) / math.Log(float64(k+1))
	t := hi - time.Duration(float64(hi-lo)*frac)
	return max(t, lo)
}
