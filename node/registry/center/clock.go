package center

import (
	"time"

	"fastcall/rfc"
)

// Clock is a center's boundary with time. Production centers use the
// host's clocks (Config.Clock nil); tests pass their own to step one
// clock apart from the other.
//
// WallMs is the wall clock, Unix milliseconds. It stamps records and
// judges the times records carry (KV expiry, tombstone ages): those
// times travel between centers and survive restarts, so only the wall
// clock can compare them.
//
// MonoNs is a monotonic clock, nanoseconds from an arbitrary origin. It
// times what lives only in one center's memory (lease deadlines), so a
// step of the wall clock neither expires a lease early nor keeps a dead
// instance alive.
type Clock interface {
	WallMs() int64
	MonoNs() int64
}

// hostClock is the default Clock: the wall clock, and the engine clock
// (Endpoint.Now, monotonic) of the center's endpoint.
type hostClock struct{ ep *rfc.Endpoint }

func (h hostClock) WallMs() int64 { return time.Now().UnixMilli() }
func (h hostClock) MonoNs() int64 { return h.ep.Now() }
