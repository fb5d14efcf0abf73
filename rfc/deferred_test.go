package rfc

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/wire"
)

const (
	callFwd      = wire.CallUserBase + 20 // bytes -> bytes, deferred inline, forwarded with GoFunc
	callLater    = wire.CallUserBase + 21 // i64 ms -> u64, deferred, replied from a goroutine
	callDefErr   = wire.CallUserBase + 22 // deferred handler answering an error at once
	callDefPanic = wire.CallUserBase + 23 // deferred handler that panics after deferring
)

// proxy is an endpoint that serves callFwd by forwarding it to a backend
// echo with GoFunc and replying from the completion function: no
// goroutine waits for the backend.
type proxy struct {
	*Endpoint
	backend  atomic.Pointer[netip.AddrPort]
	timeout  atomic.Int64
	later    atomic.Uint64 // runs of callLater's handler
	replied  atomic.Uint64
	panicked atomic.Pointer[Deferred]
}

// fwd is the per-forward state of the proxy; its method value is bound
// once, so a forward allocates nothing.
type fwd struct {
	d    *Deferred
	ps   wire.Params
	buf  []byte
	done func(*Pending)
}

func newProxy(t testing.TB, backend netip.AddrPort, mod func(*Config)) *proxy {
	t.Helper()
	return newProxyOn(t, newTestEndpoint(t, mod), backend)
}

// newProxyOn registers the proxy's calls on ep.
func newProxyOn(t testing.TB, ep *Endpoint, backend netip.AddrPort) *proxy {
	t.Helper()
	px := &proxy{Endpoint: ep}
	px.backend.Store(&backend)
	px.timeout.Store(int64(time.Second))
	free := make(chan *fwd, 64)
	for i := 0; i < cap(free); i++ {
		f := &fwd{buf: make([]byte, 1500)}
		f.done = func(p *Pending) {
			d := f.d
			if err := p.Err(); err != nil {
				f.d = nil
				free <- f
				d.Reply(wire.AsErrno(err))
				return
			}
			rp := p.Reply()
			d.Params().AppendSegment(rp.Segment(), rp.NParams())
			f.d = nil
			free <- f
			d.Reply(wire.OK)
		}
		free <- f
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(px.RegisterDeferred(callFwd, "fwd", wire.Schema{wire.TypeBytes}, Inline, func(r *Request, d *Deferred) wire.Errno {
		var f *fwd
		select {
		case f = <-free:
		default:
			return wire.EBUSY
		}
		f.d = d
		f.ps.Reset(f.buf)
		f.ps.AppendSegment(r.Segment(), r.NParams())
		if err := px.GoFunc(*px.backend.Load(), callEcho, &f.ps, time.Duration(px.timeout.Load()), f.done); err != nil {
			f.d = nil
			free <- f
			return wire.AsErrno(err)
		}
		return wire.OK
	}))
	must(px.RegisterDeferred(callLater, "later", wire.Schema{wire.TypeInt64}, 0, func(r *Request, d *Deferred) wire.Errno {
		n := px.later.Add(1)
		wait := time.Duration(r.Param(0).Int64()) * time.Millisecond
		go func() {
			time.Sleep(wait)
			d.Params().Uint64(n)
			px.replied.Add(1)
			d.Reply(wire.OK)
		}()
		return wire.OK
	}))
	must(px.RegisterDeferred(callDefErr, "def-err", nil, Inline, func(r *Request, d *Deferred) wire.Errno {
		return wire.EUSER + 7
	}))
	must(px.RegisterDeferred(callDefPanic, "def-panic", nil, Inline, func(r *Request, d *Deferred) wire.Errno {
		px.panicked.Store(d)
		panic("deferred handler bug")
	}))
	return px
}

func TestDeferredForward(t *testing.T) {
	srv := newTestServer(t, nil)
	px := newProxy(t, srv.Addr(), nil)
	cli := newTestEndpoint(t, nil)
	var rep Reply
	for i := 0; i < 200; i++ {
		msg := []byte{byte(i), 'x', byte(i >> 8)}
		err := cli.Call(ctxTimeout(t, 2*time.Second), px.Addr(), callFwd, params(func(p *wire.Params) { p.Bytes(msg) }), &rep)
		if err != nil || !bytes.Equal(rep.Param(0).Bytes(), msg) {
			t.Fatalf("forward %d: %v %q", i, err, rep.Param(0).Bytes())
		}
	}
	// The proxy finishes its books just after the reply leaves.
	for end := time.Now().Add(2 * time.Second); px.busy.Load() != 0 || px.pending.inUse() != 0; {
		if time.Now().After(end) {
			t.Fatalf("%d calls still counted running, %d forwarded calls still pending", px.busy.Load(), px.pending.inUse())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDeferredErrors(t *testing.T) {
	srv := newTestServer(t, nil)
	px := newProxy(t, srv.Addr(), nil)
	cli := newTestEndpoint(t, nil)
	ctx := func() context.Context { return ctxTimeout(t, time.Second) }
	if err := cli.Call(ctx(), px.Addr(), callDefErr, nil, nil); err != wire.EUSER+7 {
		t.Fatalf("immediate error: got %v", err)
	}
	if err := cli.Call(ctx(), px.Addr(), callDefPanic, nil, nil); err != wire.EFAULT {
		t.Fatalf("panic: got %v", err)
	}
	// The record the panicking handler held is never reused: a late
	// Reply through it is ignored.
	px.panicked.Load().Reply(wire.OK)
	var rep Reply
	if err := cli.Call(ctx(), px.Addr(), callFwd, params(func(p *wire.Params) { p.Bytes([]byte("ok")) }), &rep); err != nil {
		t.Fatalf("forward after panic: %v", err)
	}
	// The backend gone: the forwarded call times out and the proxy
	// answers ETIMEDOUT through the deferral.
	dead := newTestEndpoint(t, nil)
	da := dead.Addr()
	px.backend.Store(&da)
	px.timeout.Store(int64(50 * time.Millisecond))
	dead.Close()
	if err := cli.Call(ctx(), px.Addr(), callFwd, params(func(p *wire.Params) { p.Bytes([]byte("x")) }), nil); err != wire.ETIMEDOUT {
		t.Fatalf("dead backend: got %v", err)
	}
	// Declared dead: GoFunc fails at once and the handler answers it.
	px.MarkDead(da)
	if err := cli.Call(ctx(), px.Addr(), callFwd, params(func(p *wire.Params) { p.Bytes([]byte("x")) }), nil); err != wire.ENODEAD {
		t.Fatalf("backend marked dead: got %v", err)
	}
	if err := px.GoFunc(srv.Addr(), callEcho, nil, time.Second, nil); err != wire.EINVAL {
		t.Fatalf("GoFunc without done: %v", err)
	}
}

// A retransmission of a call whose reply is deferred is absorbed while
// it is pending and answered from the cache once it is given: the
// handler runs once.
func TestDeferredAtMostOnce(t *testing.T) {
	srv := newTestServer(t, nil)
	px := newProxy(t, srv.Addr(), nil)
	cli := newTestEndpoint(t, func(c *Config) { c.InitialRTO = 2 * time.Millisecond; c.MinRTO = time.Millisecond })
	p, err := cli.Go(ctxTimeout(t, 3*time.Second), px.Addr(), callLater, params(func(p *wire.Params) { p.Int64(150) }))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait()
	var got uint64
	if err == nil {
		got = p.Reply().Param(0).Uint64()
	}
	p.Release()
	if err != nil || got != 1 {
		t.Fatalf("deferred call: %v %d", err, got)
	}
	if cli.stats.callOut(callLater).retrans.Load() == 0 {
		t.Fatalf("no retransmission made; the test shows nothing")
	}
	if n := px.later.Load(); n != 1 {
		t.Fatalf("handler ran %d times", n)
	}
}

// TestDeferredDrainWaits: Drain waits for a deferred reply that a
// goroutine sends later, and the call gets it. In virtual time: Drain
// returns within its polling millisecond of the reply leaving.
func TestDeferredDrainWaits(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(nil)
		px := newProxyOn(t, w.endpoint(nil), srv.Addr())
		cli := w.endpoint(nil)
		const later = 200 * time.Millisecond
		p, err := cli.Go(ctxTimeout(t, 3*time.Second), px.Addr(), callLater, params(func(p *wire.Params) { p.Int64(later.Milliseconds()) }))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Release()
		synctest.Wait() // the handler ran and deferred its reply
		if px.later.Load() != 1 {
			t.Fatalf("handler ran %d times", px.later.Load())
		}
		start := time.Now()
		px.Drain(5 * time.Second)
		// Drain looks every millisecond.
		if took := time.Since(start); px.replied.Load() != 1 || took < later || took > later+time.Millisecond {
			t.Fatalf("Drain returned after %v, %d deferred replies sent; want %v (+1ms), 1", took, px.replied.Load(), later)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("deferred call across Drain: %v", err)
		}
	})
}

// Close fails a GoFunc call in flight with ECLOSED through its completion
// function, once.
func TestGoFuncClose(t *testing.T) {
	dead := newTestEndpoint(t, nil)
	addr := dead.Addr()
	dead.Close()
	cli := newTestEndpoint(t, nil)
	var runs atomic.Int32
	got := make(chan error, 4)
	err := cli.GoFunc(addr, callEcho, params(func(p *wire.Params) { p.Bytes([]byte("x")) }), 10*time.Second, func(p *Pending) {
		runs.Add(1)
		got <- p.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	select {
	case err := <-got:
		if !errors.Is(err, wire.ECLOSED) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("completion function not run by Close")
	}
	if runs.Load() != 1 {
		t.Fatalf("ran %d times", runs.Load())
	}
	if n := cli.pending.inUse(); n != 0 {
		t.Fatalf("%d slots still in use", n)
	}
}

// Deferrals are bounded by MaxPending: beyond it a call is answered
// EBUSY at once.
func TestDeferredBound(t *testing.T) {
	srv := newTestServer(t, nil)
	px := newProxy(t, srv.Addr(), func(c *Config) { c.MaxPending = 2; c.Workers = 4 })
	cli := newTestEndpoint(t, nil)
	var ps [3]*Pending
	for i := range ps {
		p, err := cli.Go(ctxTimeout(t, 3*time.Second), px.Addr(), callLater, params(func(p *wire.Params) { p.Int64(300) }))
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	busy, ok := 0, 0
	for _, p := range ps {
		switch err := p.Wait(); err {
		case nil:
			ok++
		case wire.EBUSY:
			busy++
		default:
			t.Fatalf("got %v", err)
		}
		p.Release()
	}
	if ok != 2 || busy != 1 {
		t.Fatalf("ok %d busy %d, want 2 and 1", ok, busy)
	}
}

func TestDeferredForwardAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count needs a quiet process")
	}
	srv := newTestServer(t, nil)
	px := newProxy(t, srv.Addr(), nil)
	cli := newTestEndpoint(t, nil)
	ctx := context.Background()
	var p wire.Params
	seg := make([]byte, 128)
	var rep Reply
	call := func() {
		p.Reset(seg)
		p.Bytes(seg[:64])
		if err := cli.Call(ctx, px.Addr(), callFwd, &p, &rep); err != nil {
			t.Fatal(err)
		}
	}
	per := allocsPerCall(call)
	t.Logf("%.3f allocations per forwarded call, whole process", per)
	if per > 0.05 {
		t.Fatalf("%.3f allocations per forwarded call", per)
	}
}
