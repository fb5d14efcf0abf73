package dispatch

import (
	"log/slog"
	"net/netip"
	"time"

	"fastcall/node/registry"
	"fastcall/rfc"
)

// Config configures a Dispatcher. Start from DefaultConfig and change what
// you need; Start refuses out-of-range values with a *rfc.ConfigError (scope
// "dispatch") carrying EINVAL.
type Config struct {
	// QueueLen bounds the calls accepted but not yet sent, over all
	// operations (default 16384). An operation whose calls do not all fit
	// is refused with EBUSY; an accepted call is never dropped.
	QueueLen int
	// Senders is the number of sender goroutines (default 2).
	Senders int
	// Batch is how many calls a sender takes from the queue at once
	// (default 64).
	Batch int
	// MaxTargets bounds the targets of one operation (default 4096, at
	// most QueueLen).
	MaxTargets int
	// MaxActive bounds the operations not yet done (default 1024); past
	// it Submit answers EBUSY.
	MaxActive int
	// Retention is how long the status of a finished operation stays
	// queryable (default 10 min); MaxRetained bounds the finished
	// operations kept (default 4096, the oldest leaves first).
	Retention   time.Duration
	MaxRetained int
	// DefaultDeadline is the deadline of an operation that names none
	// (default 5s); MaxDeadline bounds the one it names (default 5 min).
	DefaultDeadline, MaxDeadline time.Duration
	// MarkerTTL is how long a conflict marker outlives its operation's
	// deadline (default 10s): the marker of a dispatcher that dies stays
	// at most deadline + MarkerTTL after Submit. MaxDeadline + MarkerTTL
	// is at most registry.MaxTTL, the longest TTL of a registry key.
	// Clocks of the nodes must agree to well within it (holders carry
	// absolute expiry times).
	MarkerTTL time.Duration
	// MaxHolders bounds the operations sharing one marker (default 32, at
	// most 48); past it Submit answers ENOSPC. 32 holders (802 bytes) fit
	// one registry entry with any resource name; a marker past the store's
	// entry bound is refused by the store (EMSGSIZE).
	MaxHolders int
	// MarkerTimeout bounds the marker calls the dispatcher makes on its
	// own: the compare-and-set of a remote SUBMIT and each try of a
	// release (default 2s). A release that fails on a transient error
	// (one whose outcome is unknown) is tried again, up to four tries; one
	// that still fails leaves the marker to its TTL.
	MarkerTimeout time.Duration
	// PollInterval is how often the gatherer looks at every call in
	// flight (default 1ms); the oldest call is watched without polling.
	PollInterval time.Duration
	// KeyPrefix is prepended to a resource to make its marker key
	// (default "dispatch/").
	KeyPrefix string
	// RemoteTargets are the only addresses a remote SUBMIT may name
	// (default none: every remote SUBMIT is refused with EPERM). A
	// dispatcher sends where a SUBMIT tells it, so without this list any
	// sender of one datagram could aim its calls and their
	// retransmissions at any address. Submit through the Go API is not
	// restricted.
	RemoteTargets []netip.AddrPort
	// MaxRemoteTargets bounds the targets of a remote SUBMIT (default 64,
	// and never more than MaxTargets); past it: ENOSPC.
	MaxRemoteTargets int
	// MaxRemoteDeadline bounds the deadline a remote SUBMIT names
	// (default 10s, and never more than MaxDeadline), and so how long its
	// calls are retransmitted; past it: EINVAL.
	MaxRemoteDeadline time.Duration
	// Logger receives start, stop and marker release failures; nil means
	// slog.Default(). Nothing is logged per call.
	Logger *slog.Logger
}

// Defaults and hard limits.
const (
	DefaultQueueLen        = 16384
	DefaultSenders         = 2
	DefaultBatch           = 64
	DefaultMaxTargets      = 4096
	DefaultMaxActive       = 1024
	DefaultRetention       = 10 * time.Minute
	DefaultMaxRetained     = 4096
	DefaultDeadline        = 5 * time.Second
	DefaultMaxDeadline     = 5 * time.Minute
	DefaultMarkerTTL       = 10 * time.Second
	DefaultMaxHolders      = 32
	DefaultMarkerTimeout   = 2 * time.Second
	DefaultPollInterval    = time.Millisecond
	DefaultKeyPrefix       = "dispatch/"
	MaxResource            = 200 // bytes of a resource name
	maxHoldersLimit        = 48
	maxMarkerLife          = registry.MaxTTL // MaxDeadline + MarkerTTL: a marker key's longest TTL
	maxCASRounds           = 16              // compare-and-set attempts before EAGAIN
	maxQueueLen            = 1 << 22
	maxSenders             = 64
	minPollInterval        = 50 * time.Microsecond
	closeReleaseBudget     = 2 * time.Second // Close's bound on releasing markers
	releaseTries           = 4               // tries of a release failing on a transient error
	releaseBackoff         = 20 * time.Millisecond
	releaseBackoffMax      = 200 * time.Millisecond
	sendBusyBackoff        = 200 * time.Microsecond
	sendBusyBackoffMax     = 5 * time.Millisecond
	remoteSubmitMinTimeout = 10 * time.Millisecond

	DefaultMaxRemoteTargets  = 64
	DefaultMaxRemoteDeadline = 10 * time.Second
)

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		QueueLen:        DefaultQueueLen,
		Senders:         DefaultSenders,
		Batch:           DefaultBatch,
		MaxTargets:      DefaultMaxTargets,
		MaxActive:       DefaultMaxActive,
		Retention:       DefaultRetention,
		MaxRetained:     DefaultMaxRetained,
		DefaultDeadline: DefaultDeadline,
		MaxDeadline:     DefaultMaxDeadline,
		MarkerTTL:       DefaultMarkerTTL,
		MaxHolders:      DefaultMaxHolders,
		MarkerTimeout:   DefaultMarkerTimeout,
		PollInterval:    DefaultPollInterval,
		KeyPrefix:       DefaultKeyPrefix,

		MaxRemoteTargets:  DefaultMaxRemoteTargets,
		MaxRemoteDeadline: DefaultMaxRemoteDeadline,
	}
}

// check answers a *rfc.ConfigError (scope "dispatch", EINVAL) naming the
// first field out of range.
func (c *Config) check() error {
	bad := func(f string, v any, why string) error { return rfc.BadConfig("dispatch", f, v, why) }
	switch {
	case c.QueueLen < 1 || c.QueueLen > maxQueueLen:
		return bad("QueueLen", c.QueueLen, "must be between 1 and 4194304")
	case c.Senders < 1 || c.Senders > maxSenders:
		return bad("Senders", c.Senders, "must be between 1 and 64")
	case c.Batch < 1 || c.Batch > c.QueueLen:
		return bad("Batch", c.Batch, "must be between 1 and QueueLen")
	case c.MaxTargets < 1 || c.MaxTargets > c.QueueLen:
		return bad("MaxTargets", c.MaxTargets, "must be between 1 and QueueLen")
	case c.MaxActive < 1 || c.MaxActive > 1<<20:
		return bad("MaxActive", c.MaxActive, "must be between 1 and 1048576")
	case c.Retention <= 0:
		return bad("Retention", c.Retention, "must be positive")
	case c.MaxRetained < 1 || c.MaxRetained > 1<<20:
		return bad("MaxRetained", c.MaxRetained, "must be between 1 and 1048576")
	case c.DefaultDeadline <= 0:
		return bad("DefaultDeadline", c.DefaultDeadline, "must be positive")
	case c.MaxDeadline < c.DefaultDeadline:
		return bad("MaxDeadline", c.MaxDeadline, "must be at least DefaultDeadline")
	case c.MarkerTTL <= 0 || c.MarkerTTL > maxMarkerLife:
		return bad("MarkerTTL", c.MarkerTTL, "must be positive and at most "+maxMarkerLife.String()+" (registry.MaxTTL)")
	case c.MaxDeadline > maxMarkerLife-c.MarkerTTL:
		// A holder lives the deadline + MarkerTTL, the key's TTL as
		// long: past the registry's bound every CAS of a long operation
		// is refused, and past a Duration the TTL wraps negative.
		return bad("MaxDeadline", c.MaxDeadline, "with MarkerTTL must be at most "+maxMarkerLife.String()+" (registry.MaxTTL)")
	case c.MaxHolders < 1 || c.MaxHolders > maxHoldersLimit:
		return bad("MaxHolders", c.MaxHolders, "must be between 1 and 48")
	case c.MarkerTimeout <= 0:
		return bad("MarkerTimeout", c.MarkerTimeout, "must be positive")
	case c.PollInterval < minPollInterval || c.PollInterval > time.Second:
		return bad("PollInterval", c.PollInterval, "must be between 50µs and 1s")
	case len(c.KeyPrefix) > 64:
		return bad("KeyPrefix", nil, "at most 64 bytes")
	case c.MaxRemoteTargets < 1:
		return bad("MaxRemoteTargets", c.MaxRemoteTargets, "must be positive")
	case c.MaxRemoteDeadline <= 0:
		return bad("MaxRemoteDeadline", c.MaxRemoteDeadline, "must be positive")
	}
	for _, a := range c.RemoteTargets {
		if !a.IsValid() || a.Port() == 0 {
			return bad("RemoteTargets", a, "want IP:PORT addresses")
		}
	}
	return nil
}
