package rfc

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"fastcall/wire"
)

// Config configures an Endpoint. Start from DefaultConfig and change what
// you need; Listen refuses out-of-range values with EINVAL and a message
// naming the field.
type Config struct {
	// NodeID names this node in every datagram it sends. 0 is allowed
	// for anonymous clients such as rfcctl.
	NodeID uint32
	// Addr is the UDP address to listen on, "host:port". Default
	// "127.0.0.1:0" (loopback, any port).
	Addr string
	// Key is the cluster key. Nil means checksum mode: datagrams are
	// protected against corruption, not against forgery. With a key
	// (at least 16 bytes) every datagram is authenticated.
	Key []byte
	// PrevKey is a previous cluster key still accepted on receive during a
	// key rotation. Nil when not rotating.
	PrevKey []byte
	// MaxDatagram is the datagram size limit (default 1400, at most
	// 65507). Both ends of a link must agree.
	MaxDatagram int
	// Readers is the number of reader goroutines (default 1).
	Readers int
	// Workers is the number of worker goroutines running handlers
	// (default 4).
	Workers int
	// QueueLen bounds the requests waiting for a worker (default 1024).
	// A request that finds the queue full is answered EBUSY.
	QueueLen int
	// BatchSize is how many datagrams one recvmmsg may return (default 32).
	BatchSize int
	// MaxPending bounds the calls in flight from this endpoint (default
	// 4096, at most 1<<20). A call that finds no free slot fails with
	// EBUSY at once.
	MaxPending int
	// DefaultTimeout is the deadline of a call whose context has none
	// (default 2s). Any positive value is accepted: a deadline past the
	// engine clock's range is no deadline (clockAfter).
	DefaultTimeout time.Duration
	// InitialRTO is the retransmission timeout toward a peer with no
	// round-trip sample yet (default 20ms); MinRTO and MaxRTO bound the
	// adaptive value (defaults 2ms and 1s; MaxRTO at most 24h).
	InitialRTO, MinRTO, MaxRTO time.Duration
	// DupEntries bounds the duplicate-request cache (default 65536
	// entries, each holding one reply, sized to the reply). An entry is
	// meant to be kept while its caller may retransmit (its deadline), at
	// most DupAge (default 30s); when the cache is full the oldest
	// finished entry gives way early, and a retransmission of its call is
	// answered ESTALE (counted as dup-evicted-early). Size it to at least
	// the non-idempotent call rate times the longest caller deadline.
	// DupAge is at most 24h.
	DupEntries int
	DupAge     time.Duration
	// SuspectAfter is how many consecutive calls to a peer must time out
	// before the peer is marked suspect (default 3).
	SuspectAfter int
	// MaxPeers bounds the peers learnt from incoming requests (default
	// 65536); peers this endpoint calls or marks are always tracked, and
	// idle peers are removed (docs/PROTOCOL.md, "Peer table"). A sender
	// past the bound is served for idempotent calls and answered EBUSY
	// for the others.
	MaxPeers int
	// MaxAge bounds how old (or how far in the future) a datagram's
	// stamp may be, requests and replies alike, by the receiver's clock
	// (default 30s; 0 disables). Nodes' clocks must agree to well within
	// it. It is what keeps a captured datagram from being replayed later. At
	// most 24h.
	MaxAge time.Duration
	// StrangerErrorRate bounds the error replies per second to requests
	// that are not authenticated (default 1000; 0: unbounded).
	StrangerErrorRate int
	// Logger receives engine events (start, stop, peer state changes);
	// nil means slog.Default(). Nothing is logged per packet.
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:0",
		MaxDatagram:       wire.DefaultMaxDatagram,
		Readers:           1,
		Workers:           4,
		QueueLen:          1024,
		BatchSize:         32,
		MaxPending:        4096,
		DefaultTimeout:    2 * time.Second,
		InitialRTO:        20 * time.Millisecond,
		MinRTO:            2 * time.Millisecond,
		MaxRTO:            time.Second,
		DupEntries:        65536,
		DupAge:            30 * time.Second,
		SuspectAfter:      3,
		MaxPeers:          65536,
		MaxAge:            30 * time.Second,
		StrangerErrorRate: 1000,
	}
}

// ConfigError is the one configuration error of fastcall: the engine,
// every node service and rfcd's configuration file refuse a bad setting
// with it. It names the scope ("rfc", "heartbeat", "registry", ...), the
// field, the value given (empty when it is secret or absent) and why the
// value is refused, and carries EINVAL.
type ConfigError struct {
	Scope string
	Field string
	Value string
	Why   string
}

// BadConfig returns the ConfigError for field of scope holding value.
// value is printed with fmt.Sprint; pass nil to leave it out.
func BadConfig(scope, field string, value any, why string) *ConfigError {
	e := &ConfigError{Scope: scope, Field: field, Why: why}
	if value != nil {
		e.Value = fmt.Sprint(value)
	}
	return e
}

func (e *ConfigError) Error() string {
	s := e.Scope + " config: " + e.Field
	if e.Value != "" {
		s += " = " + e.Value
	}
	return s + ": " + e.Why
}

// Errno makes a ConfigError carry EINVAL.
func (e *ConfigError) Errno() wire.Errno { return wire.EINVAL }

// maxConfigDuration bounds the durations the engine adds to its clock
// without saturating (retransmission timeouts, cache and replay ages), so
// that no sum overflows.
const maxConfigDuration = 24 * time.Hour

// minDatagram is the smallest MaxDatagram: a header and 64 bytes of
// parameters.
const minDatagram = wire.HeaderSize + 64

func (c *Config) check() error {
	bad := func(f string, v any, why string) error { return BadConfig("rfc", f, v, why) }
	switch {
	case c.Addr == "":
		return bad("Addr", c.Addr, "empty")
	case c.MaxDatagram < minDatagram || c.MaxDatagram > wire.MaxDatagram:
		return bad("MaxDatagram", c.MaxDatagram, "must be between "+strconv.Itoa(minDatagram)+" and "+strconv.Itoa(wire.MaxDatagram))
	case c.Readers < 1 || c.Readers > 64:
		return bad("Readers", c.Readers, "must be between 1 and 64")
	case c.Workers < 1 || c.Workers > 4096:
		return bad("Workers", c.Workers, "must be between 1 and 4096")
	case c.QueueLen < 1 || c.QueueLen > 1<<20:
		return bad("QueueLen", c.QueueLen, "must be between 1 and 1048576")
	case c.BatchSize < 1 || c.BatchSize > 1024:
		return bad("BatchSize", c.BatchSize, "must be between 1 and 1024")
	case c.MaxPending < 1 || c.MaxPending > maxSlots:
		return bad("MaxPending", c.MaxPending, "must be between 1 and 1048576")
	case c.DefaultTimeout <= 0:
		return bad("DefaultTimeout", c.DefaultTimeout, "must be positive")
	case c.MinRTO <= 0 || c.MaxRTO < c.MinRTO:
		return bad("MinRTO/MaxRTO", c.MinRTO, "need 0 < MinRTO <= MaxRTO")
	case c.InitialRTO < c.MinRTO || c.InitialRTO > c.MaxRTO:
		return bad("InitialRTO", c.InitialRTO, "must be between MinRTO and MaxRTO")
	case c.DupEntries < 16 || c.DupEntries > 1<<20:
		return bad("DupEntries", c.DupEntries, "must be between 16 and 1048576")
	case c.MaxRTO > maxConfigDuration:
		return bad("MaxRTO", c.MaxRTO, "must be at most "+maxConfigDuration.String())
	case c.DupAge <= 0 || c.DupAge > maxConfigDuration:
		return bad("DupAge", c.DupAge, "must be positive and at most "+maxConfigDuration.String())
	case c.SuspectAfter < 1:
		return bad("SuspectAfter", c.SuspectAfter, "must be at least 1")
	case c.MaxAge < 0 || c.MaxAge > maxConfigDuration:
		return bad("MaxAge", c.MaxAge, "must be between 0 and "+maxConfigDuration.String())
	case c.StrangerErrorRate < 0:
		return bad("StrangerErrorRate", c.StrangerErrorRate, "must not be negative")
	case c.MaxPeers < 1:
		return bad("MaxPeers", c.MaxPeers, "must be at least 1")
	case len(c.Key) > 0 && len(c.Key) < wire.MinKeyLen:
		return bad("Key", strconv.Itoa(len(c.Key))+" bytes", "must be at least 16 bytes")
	case len(c.PrevKey) > 0 && len(c.Key) == 0:
		return bad("PrevKey", strconv.Itoa(len(c.PrevKey))+" bytes", "needs Key")
	case len(c.PrevKey) > 0 && len(c.PrevKey) < wire.MinKeyLen:
		return bad("PrevKey", strconv.Itoa(len(c.PrevKey))+" bytes", "must be at least 16 bytes")
	}
	return nil
}
