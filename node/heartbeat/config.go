package heartbeat

import (
	"log/slog"
	"time"

	"fastcall/rfc"
)

// Config configures a Service. Start from DefaultConfig (or
// DefaultConfig().WithInterval(d)) and change what you need; Start refuses
// out-of-range values with an *rfc.ConfigError carrying EINVAL.
type Config struct {
	// Interval is the probe period (default 200ms): a member not heard
	// from (any datagram) within Interval is probed.
	Interval time.Duration
	// ProbeTimeout is the deadline of one probe (default Interval/2).
	// The engine retransmits within it, so a lossy link still answers.
	// Must be below Interval.
	ProbeTimeout time.Duration
	// RoundTimeout is how long one suspect round waits for a direct
	// answer or an indirect acknowledgement (default Interval). Must be
	// at least ProbeTimeout.
	RoundTimeout time.Duration
	// SuspectAfter is how many probes in a row must fail before a member
	// becomes suspect (default 2).
	SuspectAfter int
	// DeadAfter is how many suspect rounds (a direct probe plus
	// IndirectProbes indirect ones) must pass without a sign of life
	// before a suspect member is declared dead (default 1).
	DeadAfter int
	// IndirectProbes is how many other members are asked to probe a
	// suspect member in each round (default 3; 0 disables indirect
	// probes).
	IndirectProbes int
	// ReprobeInterval is how often a dead member is probed so that a
	// partition heals (default 5*Interval).
	ReprobeInterval time.Duration
	// Tick is the probe loop's granularity (default Interval/10, at
	// least 1ms). Detection bounds include one Tick.
	Tick time.Duration
	// MaxMembers bounds the member list (default 1024).
	MaxMembers int
	// EventQueue bounds the events waiting for listeners (default 1024).
	// When full, further events are dropped and counted.
	EventQueue int
	// RelayQueue bounds the indirect probes this member runs for others
	// at once (default 64). Requests past it are dropped and counted.
	RelayQueue int
	// Logger receives state changes; nil means slog.Default(). Nothing is
	// logged per probe.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultInterval       = 200 * time.Millisecond
	DefaultSuspectAfter   = 2
	DefaultDeadAfter      = 1
	DefaultIndirectProbes = 3
	DefaultMaxMembers     = 1024
	DefaultEventQueue     = 1024
	DefaultRelayQueue     = 64

	minTick = time.Millisecond
)

// DefaultConfig returns the documented defaults (Interval 200ms).
func DefaultConfig() Config {
	c := Config{
		SuspectAfter:   DefaultSuspectAfter,
		DeadAfter:      DefaultDeadAfter,
		IndirectProbes: DefaultIndirectProbes,
		MaxMembers:     DefaultMaxMembers,
		EventQueue:     DefaultEventQueue,
		RelayQueue:     DefaultRelayQueue,
	}
	return c.WithInterval(DefaultInterval)
}

// WithInterval returns c with Interval set to d and the timers derived
// from it reset to their default ratios: ProbeTimeout d/2, RoundTimeout d,
// ReprobeInterval 5d, Tick d/10 (at least 1ms).
func (c Config) WithInterval(d time.Duration) Config {
	c.Interval = d
	c.ProbeTimeout = d / 2
	c.RoundTimeout = d
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
	case c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.Interval:
		return bad("ProbeTimeout", c.ProbeTimeout, "must be positive and below Interval")
	case c.RoundTimeout < c.ProbeTimeout:
		return bad("RoundTimeout", c.RoundTimeout, "must be at least ProbeTimeout")
	case c.SuspectAfter < 1:
		return bad("SuspectAfter", c.SuspectAfter, "must be at least 1")
	case c.DeadAfter < 1:
		return bad("DeadAfter", c.DeadAfter, "must be at least 1")
	case c.IndirectProbes < 0 || c.IndirectProbes > 16:
		return bad("IndirectProbes", c.IndirectProbes, "must be between 0 and 16")
	case c.ReprobeInterval < c.Interval:
		return bad("ReprobeInterval", c.ReprobeInterval, "must be at least Interval")
	case c.Tick < minTick || c.Tick > c.Interval:
		return bad("Tick", c.Tick, "must be between 1ms and Interval")
	case c.MaxMembers < 1 || c.MaxMembers > 1<<16:
		return bad("MaxMembers", c.MaxMembers, "must be between 1 and 65536")
	case c.EventQueue < 1 || c.EventQueue > 1<<20:
		return bad("EventQueue", c.EventQueue, "must be between 1 and 1048576")
	case c.RelayQueue < 1 || c.RelayQueue > 1<<16:
		return bad("RelayQueue", c.RelayQueue, "must be between 1 and 65536")
	}
	return nil
}

// DetectBound is the longest time from the last datagram heard from a
// member that stopped to its declaration as dead, for configuration c:
//
//	first probe      at most 2*Interval after the last datagram (a probe
//	                 goes out on the member's cadence once it has been
//	                 silent for a full Interval)
//	suspect          (SuspectAfter-1)*Interval + ProbeTimeout later
//	dead             DeadAfter*RoundTimeout later
//	plus two Ticks of loop granularity.
//
// It is a pure function of c so that it can be table-tested and printed.
func DetectBound(c Config) time.Duration {
	return 2*c.Interval + time.Duration(c.SuspectAfter-1)*c.Interval + c.ProbeTimeout +
		time.Duration(c.DeadAfter)*c.RoundTimeout + 2*c.Tick
}
