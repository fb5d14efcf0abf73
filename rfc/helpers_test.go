package rfc

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc/internal/testenv"
	"fastcall/wire"
)

const (
	callEcho    = wire.CallUserBase + 1 // bytes -> bytes, inline
	callAdd     = wire.CallUserBase + 2 // i64, i64 -> i64
	callSleep   = wire.CallUserBase + 3 // i64 ms -> (), worker
	callIncr    = wire.CallUserBase + 4 // () -> u64, non-idempotent
	callPanic   = wire.CallUserBase + 5
	callBig     = wire.CallUserBase + 6 // reply larger than a datagram
	callUserErr = wire.CallUserBase + 7
	callEchoW   = wire.CallUserBase + 8 // bytes -> bytes, on a worker
)

type testServer struct {
	*Endpoint
	counter atomic.Uint64
	runs    atomic.Uint64
}

// newTestEndpoint opens a loopback endpoint on DefaultConfig (node id 0),
// changed by mod when mod is not nil, closed when the test ends.
func newTestEndpoint(t testing.TB, mod func(*Config)) *Endpoint {
	t.Helper()
	return testenv.Open(t, DefaultConfig(), mod, Listen)
}

func newTestServer(t testing.TB, mod func(*Config)) *testServer {
	return registerTestCalls(t, newTestEndpoint(t, mod))
}

// newTestPair opens a test server and a client endpoint, both on
// DefaultConfig: the opening of most loopback tests.
func newTestPair(t testing.TB) (*testServer, *Endpoint) {
	t.Helper()
	return newTestServer(t, nil), newTestEndpoint(t, nil)
}

// registerTestCalls registers the test calls on ep.
func registerTestCalls(t testing.TB, ep *Endpoint) *testServer {
	s := &testServer{Endpoint: ep}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Register(callEcho, "echo", wire.Schema{wire.TypeBytes}, Idempotent|Inline, func(r *Request, rep *wire.Params) wire.Errno {
		rep.Bytes(r.Param(0).Bytes())
		return wire.OK
	}))
	must(s.Register(callEchoW, "echo-worker", wire.Schema{wire.TypeBytes}, Idempotent, func(r *Request, rep *wire.Params) wire.Errno {
		rep.Bytes(r.Param(0).Bytes())
		return wire.OK
	}))
	must(s.Register(callAdd, "add", wire.Schema{wire.TypeInt64, wire.TypeInt64}, Idempotent, func(r *Request, rep *wire.Params) wire.Errno {
		rep.Int64(r.Param(0).Int64() + r.Param(1).Int64())
		return wire.OK
	}))
	must(s.Register(callSleep, "sleep", wire.Schema{wire.TypeInt64}, 0, func(r *Request, rep *wire.Params) wire.Errno {
		time.Sleep(time.Duration(r.Param(0).Int64()) * time.Millisecond)
		return wire.OK
	}))
	must(s.Register(callIncr, "incr", nil, 0, func(r *Request, rep *wire.Params) wire.Errno {
		s.runs.Add(1)
		rep.Uint64(s.counter.Add(1))
		return wire.OK
	}))
	must(s.Register(callPanic, "panic", nil, 0, func(r *Request, rep *wire.Params) wire.Errno {
		panic("handler bug")
	}))
	must(s.Register(callBig, "big", nil, Idempotent, func(r *Request, rep *wire.Params) wire.Errno {
		rep.Bytes(make([]byte, 4000))
		return wire.OK
	}))
	must(s.Register(callUserErr, "user-err", nil, Idempotent, func(r *Request, rep *wire.Params) wire.Errno {
		return wire.EUSER + 5
	}))
	return s
}

// silentAddr returns the address of a loopback UDP socket that never
// reads, closed when the test ends: a peer that answers nothing.
func silentAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	return testenv.UDP(t).LocalAddr().(*net.UDPAddr).AddrPort()
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// concurrentAdds runs callers goroutines of n add calls each from cli to
// dst, each call with the context ctx returns, and fails t on an error or
// a wrong sum. The goroutines yield now and then, so that calls overlap
// in changing ways.
func concurrentAdds(t *testing.T, cli *Endpoint, dst netip.AddrPort, callers, n int, ctx func() context.Context) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var rep Reply
			for i := 0; i < n; i++ {
				p := params(func(p *wire.Params) { p.Int64(int64(g * 1000)); p.Int64(int64(i)) })
				if err := cli.Call(ctx(), dst, callAdd, p, &rep); err != nil {
					errs <- err
					return
				}
				if got := rep.Param(0).Int64(); got != int64(g*1000+i) {
					errs <- wire.EPROTO
					return
				}
				if i%50 == 0 {
					runtime.Gosched()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func params(f func(p *wire.Params)) *wire.Params {
	p := new(wire.Params)
	p.Reset(make([]byte, 2048))
	if f != nil {
		f(p)
	}
	return p
}

// retransOf returns the retransmissions ep counts for its calls of
// number no.
func retransOf(ep *Endpoint, no uint16) uint64 {
	for _, c := range ep.Stats().Called {
		if c.CallNo == no {
			return c.Retrans
		}
	}
	return 0
}

// allRetrans returns the retransmissions st counts for the calls of
// every number.
func allRetrans(st Stats) uint64 {
	var n uint64
	for _, c := range st.Called {
		n += c.Retrans
	}
	return n
}

// waitFor polls cond until it holds or d passes, and reports whether it
// held.
func waitFor(d time.Duration, cond func() bool) bool { return testenv.WaitFor(d, cond) }

// waitResult waits up to 10 s for the result of what on res and fails the
// test if it is an error or does not come.
func waitResult(t *testing.T, res <-chan error, what string) {
	t.Helper()
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no result after 10s", what)
	}
}
