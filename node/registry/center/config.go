package center

import (
	"log/slog"
	"math"
	"net/netip"
	"time"

	"fastcall/node/registry"
	"fastcall/rfc"
	"fastcall/wire"
)

// Config configures a Center. Start from DefaultConfig and change what you
// need; StartCenter refuses out-of-range values with an *rfc.ConfigError
// carrying EINVAL.
type Config struct {
	// DataDir holds the log and the snapshot (required).
	DataDir string
	// Peer is the address of the other center; the zero value runs a
	// single center.
	Peer netip.AddrPort
	// Index is this center's index, 0 or 1; the two centers of a pair
	// must differ. Index 0 is the senior center: when both write one key
	// at the same moment, its write wins and the junior's is refused.
	// The index is also the low bit of every version this center makes.
	Index uint8
	// Fsync is the log's sync policy (default FsyncAlways: synced before
	// any acknowledgement); FsyncEvery is the period of FsyncInterval
	// (default 100ms).
	Fsync      FsyncPolicy
	FsyncEvery time.Duration
	// SnapshotBytes is the log size past which the store is written to a
	// snapshot and the log restarted (default 8 MiB).
	SnapshotBytes int64
	// MaxKeys bounds the keys of the store, tombstones included (default
	// 65536); a write of a new key past it gets ENOSPC.
	MaxKeys int
	// TombstoneAge is how long a deleted key is remembered so that
	// anti-entropy does not bring it back (default 1h), counted from the
	// deletion: the tombstone's modified time, on the wall clock of the
	// center that deleted it, which the tombstone carries everywhere (a
	// restart does not make it younger). A center never takes a
	// tombstone past this age for a key it does not hold. A center that
	// stays away longer than this may resurrect keys deleted meanwhile.
	TombstoneAge time.Duration
	// ReplicateTimeout bounds a replication call to the other center
	// (default 300ms). A write whose replication times out while the
	// other center is not declared dead is refused with EAGAIN.
	ReplicateTimeout time.Duration
	// AntiEntropyEvery is the period of the full comparison with the
	// other center (default 10s); it also runs at start and whenever the
	// other center comes back to life.
	AntiEntropyEvery time.Duration
	// SyncPage bounds the entries asked for per anti-entropy page
	// (default 31; a page is also bounded by the datagram limit).
	SyncPage int
	// SweepEvery is the period of the expiry sweep of KV TTLs and
	// service leases (default 50ms).
	SweepEvery time.Duration
	// MaxLease bounds a registration's lease (default 10 min, at most
	// 2^32-1 ms, what a record holds);
	// DefaultLease is used when a registration asks for 0 (default 10s).
	MaxLease, DefaultLease time.Duration
	// MaxStreamsPerNode and MaxPrefixesPerNode bound the push streams and
	// subscribed prefixes of one subscriber address (defaults 4 and 32),
	// MaxStreamsPerIP the streams of all the ports of one IP address
	// (default 64), MaxStreams all streams (default 4096); past them
	// registry.CallSubscribe answers ENOSPC, and the refusal is logged (at most
	// once per StreamIdle) and counted.
	MaxStreamsPerNode, MaxPrefixesPerNode, MaxStreamsPerIP, MaxStreams int
	// StreamIdle is how long a push stream lives without being renewed
	// (default 5s): by its subscriber's registry.CallSubCheck (a Watch sends one
	// every KeepaliveEvery, default 250ms), by registry.CallSubscribe once
	// the stream is proven, or by an acknowledged push. A stream not renewed
	// within it is dropped.
	StreamIdle time.Duration
	// StreamQueue bounds the changes waiting to be pushed on one stream
	// (default 4096). A stream that overflows is broken: its next push
	// skips sequence numbers, so the subscriber sees the gap and
	// resynchronizes.
	StreamQueue int
	// Pushers is the number of push goroutines (default 2). A change is
	// pushed by the goroutine that applied it, and the next batch of a
	// stream by the goroutine that completed the previous push; pushers
	// send the retries. None waits for an acknowledgement: a push is an
	// asynchronous call, one batch in flight per stream.
	Pushers int
	// PushTimeout bounds one push call (default 200ms; the engine
	// retransmits within it). A failed push is retried after
	// PushRetry (default 50ms); a stream whose pushes fail
	// MaxPushFailures times in a row (default 50) is dropped.
	PushTimeout, PushRetry time.Duration
	MaxPushFailures        int
	// DeadQueue bounds the dead-node notices waiting for the lease
	// goroutine (default 1024); notices past it are dropped and counted
	// (leases still expire).
	DeadQueue int
	// Logger receives state changes; nil means slog.Default(). Nothing is
	// logged per call.
	Logger *slog.Logger
	// Clock is the center's view of time (clock.go); nil means the host's
	// wall clock and the endpoint's monotonic engine clock.
	Clock Clock
	// Disk is the center's view of its data directory (disk.go); nil
	// means the host's file system (OSDisk).
	Disk Disk
	// IDs draws the incarnation of each opening of the log and the
	// cookie of each push stream; nil means registry.RandomID.
	IDs registry.IDSource
}

// Defaults.
const (
	DefaultFsyncEvery         = 100 * time.Millisecond
	DefaultSnapshotBytes      = 8 << 20
	DefaultMaxKeys            = 65536
	DefaultTombstoneAge       = time.Hour
	DefaultReplicateTimeout   = 300 * time.Millisecond
	DefaultAntiEntropyEvery   = 10 * time.Second
	DefaultSyncPage           = 31
	DefaultSweepEvery         = 50 * time.Millisecond
	DefaultMaxLease           = 10 * time.Minute
	DefaultLease              = registry.DefaultLease
	DefaultMaxStreamsPerNode  = 4
	DefaultMaxPrefixesPerNode = 32
	DefaultMaxStreamsPerIP    = 64
	DefaultMaxStreams         = 4096
	DefaultStreamIdle         = 5 * time.Second
	DefaultStreamQueue        = 4096
	DefaultPushers            = 2
	DefaultPushTimeout        = 200 * time.Millisecond
	DefaultPushRetry          = 50 * time.Millisecond
	DefaultMaxPushFailures    = 50
	DefaultDeadQueue          = 1024
)

// maxLease bounds Config.MaxLease: a record keeps its lease as u32
// milliseconds (sdk.Record.LeaseMs), so a longer one would be cut.
const maxLease = math.MaxUint32 * time.Millisecond

// DefaultConfig returns the documented defaults for a center keeping its
// data in dir.
func DefaultConfig(dir string) Config {
	return Config{
		DataDir:            dir,
		Fsync:              FsyncAlways,
		FsyncEvery:         DefaultFsyncEvery,
		SnapshotBytes:      DefaultSnapshotBytes,
		MaxKeys:            DefaultMaxKeys,
		TombstoneAge:       DefaultTombstoneAge,
		ReplicateTimeout:   DefaultReplicateTimeout,
		AntiEntropyEvery:   DefaultAntiEntropyEvery,
		SyncPage:           DefaultSyncPage,
		SweepEvery:         DefaultSweepEvery,
		MaxLease:           DefaultMaxLease,
		DefaultLease:       DefaultLease,
		MaxStreamsPerNode:  DefaultMaxStreamsPerNode,
		MaxPrefixesPerNode: DefaultMaxPrefixesPerNode,
		MaxStreamsPerIP:    DefaultMaxStreamsPerIP,
		MaxStreams:         DefaultMaxStreams,
		StreamIdle:         DefaultStreamIdle,
		StreamQueue:        DefaultStreamQueue,
		Pushers:            DefaultPushers,
		PushTimeout:        DefaultPushTimeout,
		PushRetry:          DefaultPushRetry,
		MaxPushFailures:    DefaultMaxPushFailures,
		DeadQueue:          DefaultDeadQueue,
	}
}

func (c *Config) check() error {
	switch {
	case c.DataDir == "":
		return rfc.BadConfig("registry", "DataDir", c.DataDir, "required")
	case c.Index > 1:
		return rfc.BadConfig("registry", "Index", c.Index, "must be 0 or 1")
	case c.Fsync > FsyncNever:
		return rfc.BadConfig("registry", "Fsync", c.Fsync, "unknown policy")
	case c.Fsync == FsyncInterval && c.FsyncEvery <= 0:
		return rfc.BadConfig("registry", "FsyncEvery", c.FsyncEvery, "must be positive")
	case c.SnapshotBytes < 4096:
		return rfc.BadConfig("registry", "SnapshotBytes", c.SnapshotBytes, "must be at least 4096")
	case c.MaxKeys < 1 || c.MaxKeys > 1<<22:
		return rfc.BadConfig("registry", "MaxKeys", c.MaxKeys, "must be between 1 and 4194304")
	case c.TombstoneAge < time.Second:
		return rfc.BadConfig("registry", "TombstoneAge", c.TombstoneAge, "must be at least 1s")
	case c.ReplicateTimeout <= 0:
		return rfc.BadConfig("registry", "ReplicateTimeout", c.ReplicateTimeout, "must be positive")
	case c.AntiEntropyEvery < 10*time.Millisecond:
		return rfc.BadConfig("registry", "AntiEntropyEvery", c.AntiEntropyEvery, "must be at least 10ms")
	case c.SyncPage < 1 || c.SyncPage > (wire.MaxParams-1)/2:
		return rfc.BadConfig("registry", "SyncPage", c.SyncPage, "must be between 1 and 31")
	case c.SweepEvery < time.Millisecond:
		return rfc.BadConfig("registry", "SweepEvery", c.SweepEvery, "must be at least 1ms")
	case c.MaxLease < time.Second || c.MaxLease > maxLease || c.DefaultLease <= 0 || c.DefaultLease > c.MaxLease:
		return rfc.BadConfig("registry", "MaxLease", c.MaxLease, "MaxLease between 1s and "+maxLease.String()+", DefaultLease in (0, MaxLease]")
	case c.MaxStreamsPerNode < 1 || c.MaxPrefixesPerNode < 1 || c.MaxStreamsPerIP < 1 || c.MaxStreams < 1:
		return rfc.BadConfig("registry", "MaxStreams", c.MaxStreams, "stream and prefix bounds must be at least 1")
	case c.StreamIdle < 10*time.Millisecond:
		return rfc.BadConfig("registry", "StreamIdle", c.StreamIdle, "must be at least 10ms")
	case c.StreamQueue < 1 || c.StreamQueue > 1<<20:
		return rfc.BadConfig("registry", "StreamQueue", c.StreamQueue, "must be between 1 and 1048576")
	case c.Pushers < 1 || c.Pushers > 64:
		return rfc.BadConfig("registry", "Pushers", c.Pushers, "must be between 1 and 64")
	case c.PushTimeout <= 0 || c.PushRetry <= 0 || c.MaxPushFailures < 1:
		return rfc.BadConfig("registry", "PushTimeout", c.PushTimeout, "push timers and failure bound must be positive")
	case c.DeadQueue < 1:
		return rfc.BadConfig("registry", "DeadQueue", c.DeadQueue, "must be at least 1")
	}
	return nil
}
