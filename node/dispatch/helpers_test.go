package dispatch

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// The endpoint helpers of the tests are rfctest's.
var (
	quiet   = rfctest.Quiet
	newEP   = rfctest.Listen
	ctxFor  = rfctest.Context
	waitFor = rfctest.WaitFor
)

// Target-side calls of the tests.
const (
	callWork = wire.CallUserBase + 1 // i64 ms -> (): sleeps, on a worker, not idempotent
	callFail = wire.CallUserBase + 2 // () -> EUSER+7
	callIncr = wire.CallUserBase + 3 // () -> u64: counts runs, not idempotent

	errFail = wire.EUSER + 7
)

// smallTarget keeps a target endpoint light: thousands of them run in
// one test process (and under the race detector's goroutine limit).
func smallTarget(c *rfc.Config) {
	c.Workers = 1
	c.QueueLen = 32
	c.MaxPending = 16
	c.DupEntries = 64
	c.BatchSize = 8
}

// targets is a set of target endpoints serving the test calls.
type targets struct {
	eps   []*rfc.Endpoint
	runs  atomic.Int64 // callWork and callIncr runs, over all targets
	perEP []atomic.Int64
}

func startTargets(t testing.TB, n int) *targets {
	t.Helper()
	return startTargetsOn(t, n, func(node uint32, mod func(*rfc.Config)) *rfc.Endpoint { return newEP(t, node, mod) })
}

// startTargetsOn is startTargets with endpoints from open (newEP, or a
// simulated network's).
func startTargetsOn(t testing.TB, n int, open func(node uint32, mod func(*rfc.Config)) *rfc.Endpoint) *targets {
	t.Helper()
	ts := &targets{eps: make([]*rfc.Endpoint, n), perEP: make([]atomic.Int64, n)}
	for i := range ts.eps {
		ep := open(uint32(1000+i), smallTarget)
		i := i
		must(t, ep.Register(callWork, "work", wire.Schema{wire.TypeInt64}, 0, func(r *rfc.Request, _ *wire.Params) wire.Errno {
			ts.runs.Add(1)
			ts.perEP[i].Add(1)
			time.Sleep(time.Duration(r.Param(0).Int64()) * time.Millisecond)
			return wire.OK
		}))
		must(t, ep.Register(callFail, "fail", nil, rfc.Idempotent, func(*rfc.Request, *wire.Params) wire.Errno { return errFail }))
		must(t, ep.Register(callIncr, "incr", nil, 0, func(r *rfc.Request, rep *wire.Params) wire.Errno {
			ts.perEP[i].Add(1)
			rep.Uint64(uint64(ts.runs.Add(1)))
			return wire.OK
		}))
		ts.eps[i] = ep
	}
	return ts
}

func (ts *targets) addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(ts.eps))
	for i, ep := range ts.eps {
		out[i] = ep.Addr()
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newDispatcher(t testing.TB, ep *rfc.Endpoint, store MarkerStore, mod func(*Config)) *Dispatcher {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Logger = quiet
	if mod != nil {
		mod(&cfg)
	}
	d, err := Start(ep, cfg, store)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// workCall is callWork for ms milliseconds.
func workCall(ms int64) Call {
	var p wire.Params
	p.Reset(make([]byte, 32))
	p.Int64(ms)
	return CallOf(callWork, &p)
}

func opFor(resource string, kind Kind, call Call, addrs []netip.AddrPort, deadline time.Duration) *Op {
	op := &Op{Resource: resource, Kind: kind, Call: call, Deadline: deadline}
	for _, a := range addrs {
		op.Targets = append(op.Targets, Target{Addr: a})
	}
	return op
}

func errnoOf(err error) wire.Errno { return wire.AsErrno(err) }
