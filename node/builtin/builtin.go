// Package builtin holds the small calls every rfcd node serves for testing,
// demonstrations and benchmarks: echo, add, sleep, a non-idempotent
// counter, and a call that fails on purpose. It also holds the table of
// call names that rfcctl accepts in place of numbers.
package builtin

import (
	"sync/atomic"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// Call numbers, in the range reserved for rfcd (docs/PROTOCOL.md).
const (
	CallEcho    uint16 = wire.CallToolBase + 0 // bytes -> bytes (inline)
	CallAdd     uint16 = wire.CallToolBase + 1 // i64, i64 -> i64
	CallSleep   uint16 = wire.CallToolBase + 2 // i64 milliseconds (capped at MaxSleep) -> (); not idempotent, so retransmissions wait for the first run
	CallIncr    uint16 = wire.CallToolBase + 3 // () -> u64 new value; not idempotent
	CallCounter uint16 = wire.CallToolBase + 4 // () -> u64 current value
	CallFault   uint16 = wire.CallToolBase + 5 // () -> handler panics: EFAULT
	CallEchoW   uint16 = wire.CallToolBase + 6 // bytes -> bytes (on a worker)
)

// MaxSleep caps the sleep call so a caller cannot hold a worker for long.
const MaxSleep = 10 * time.Second

// Counter is the state behind CallIncr and CallCounter.
type Counter struct{ v atomic.Uint64 }

// Value returns the counter.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Register adds the built-in calls to ep and returns their counter.
func Register(ep *rfc.Endpoint) (*Counter, error) {
	c := new(Counter)
	echo := func(r *rfc.Request, rep *wire.Params) wire.Errno {
		rep.Bytes(r.Param(0).Bytes())
		return wire.OK
	}
	calls := []rfc.CallSpec{
		{No: CallEcho, Name: "echo", Schema: wire.Schema{wire.TypeBytes}, Flags: rfc.Idempotent | rfc.Inline, H: echo},
		{No: CallEchoW, Name: "echo-worker", Schema: wire.Schema{wire.TypeBytes}, Flags: rfc.Idempotent, H: echo},
		{No: CallAdd, Name: "add", Schema: wire.Schema{wire.TypeInt64, wire.TypeInt64}, Flags: rfc.Idempotent | rfc.Inline,
			H: func(r *rfc.Request, rep *wire.Params) wire.Errno {
				rep.Int64(r.Param(0).Int64() + r.Param(1).Int64())
				return wire.OK
			}},
		{No: CallSleep, Name: "sleep", Schema: wire.Schema{wire.TypeInt64},
			H: func(r *rfc.Request, rep *wire.Params) wire.Errno {
				// Checked in milliseconds: a count past MaxSleep could
				// wrap to a short duration once multiplied.
				ms := r.Param(0).Int64()
				if ms < 0 || ms > int64(MaxSleep/time.Millisecond) {
					return wire.EINVAL
				}
				time.Sleep(time.Duration(ms) * time.Millisecond)
				return wire.OK
			}},
		{No: CallIncr, Name: "incr", H: func(r *rfc.Request, rep *wire.Params) wire.Errno {
			rep.Uint64(c.v.Add(1))
			return wire.OK
		}},
		{No: CallCounter, Name: "counter", Flags: rfc.Idempotent | rfc.Inline, H: func(r *rfc.Request, rep *wire.Params) wire.Errno {
			rep.Uint64(c.v.Load())
			return wire.OK
		}},
		{No: CallFault, Name: "fault", Flags: rfc.Idempotent, H: func(r *rfc.Request, rep *wire.Params) wire.Errno {
			panic("fault call: fails on purpose")
		}},
	}
	if err := ep.RegisterCalls(calls); err != nil {
		return nil, err
	}
	return c, nil
}

// Names maps the call names rfcctl accepts to numbers: the engine's own
// calls and the built-ins. Services add theirs with their own tables.
var Names = map[string]uint16{
	"ping":         rfc.CallPing,
	"stats":        rfc.CallStats,
	"engine-stats": rfc.CallEngineStats,
	"calls":        rfc.CallCalls,
	"echo":         CallEcho,
	"echo-worker":  CallEchoW,
	"add":          CallAdd,
	"sleep":        CallSleep,
	"incr":         CallIncr,
	"counter":      CallCounter,
	"fault":        CallFault,
}
