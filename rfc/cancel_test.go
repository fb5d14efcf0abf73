package rfc

import (
	"context"
	"sync"
	"testing"
	"time"

	"fastcall/wire"
)

// Tests of a caller's context (cancel.go): how a caller with a deadline
// or a cancellable context parks, what such a call allocates, how often
// watched contexts are asked, how a cancellation ends the call, and which
// error number an ended context gives.

// A sole caller whose context has a deadline, or can be cancelled, waits
// on the bell as a caller with context.Background does: its context is
// watched by the timer goroutine, not by the caller.
func TestBellContextCaller(t *testing.T) {
	srv, cli := newTestPair(t)
	needBell(t, cli)
	kinds := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 5*time.Second)
		}},
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			w0 := cli.bell.waits.Load()
			for i := 0; i < 200; i++ {
				ctx, cancel := k.ctx()
				err := cli.Call(ctx, srv.Addr(), CallPing, nil, nil)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
			}
			// A call whose reply came before its caller reached the bell
			// does not wait at all, but not all 200 can be so.
			if w := cli.bell.waits.Load() - w0; w == 0 || w > 200 {
				t.Fatalf("%d of 200 sequential calls waited on the bell", w)
			}
			if n := cli.watch.n.Load(); n != 0 {
				t.Fatalf("%d calls still under watch", n)
			}
		})
	}
}

// callerAllocs returns the allocations per call of Call with the
// context ctx gives, counted over the whole process, while others
// goroutines call in a loop beside it with a long deadline context of
// their own; ctx's own allocations (and done's) are counted too.
func callerAllocs(t *testing.T, others int, ctx func() (context.Context, context.CancelFunc)) float64 {
	srv, cli := newTestPair(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	for g := 0; g < others; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			var p wire.Params
			seg := make([]byte, 128)
			payload := make([]byte, 64)
			var rep Reply
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.Reset(seg)
				p.Bytes(payload)
				if err := cli.Call(c, srv.Addr(), callEcho, &p, &rep); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var p wire.Params
	seg := make([]byte, 128)
	payload := make([]byte, 64)
	var rep Reply
	var failed error
	call := func() {
		c, cancel := ctx()
		p.Reset(seg)
		p.Bytes(payload)
		if err := cli.Call(c, srv.Addr(), callEcho, &p, &rep); err != nil && failed == nil {
			failed = err
		}
		cancel()
	}
	for i := 0; i < 2000; i++ { // warm up: slots, caches, pools
		call()
	}
	a := testing.AllocsPerRun(3000, call)
	if failed != nil {
		t.Fatal(failed)
	}
	return a
}

// A call with a deadline context allocates nothing, alone or with other
// callers in flight.
func TestCallAllocsDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count needs a quiet process")
	}
	long, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	reused := func() (context.Context, context.CancelFunc) { return long, func() {} }
	for _, others := range []int{0, 8} {
		if a := callerAllocs(t, others, reused); a != 0 {
			t.Fatalf("%d other callers: %v allocations per call with a deadline context", others, a)
		}
	}
}

// A call with a context made for it (as the services make them) adds no
// allocation to the context's own: the engine never asks such a context
// for its Done channel, which the context would allocate.
func TestCallAllocsContextPerCall(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count needs a quiet process")
	}
	perCall := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Minute)
	}
	own := testing.AllocsPerRun(3000, func() { _, cancel := perCall(); cancel() })
	if a := callerAllocs(t, 0, perCall); a != own {
		t.Fatalf("%v allocations per call with a context made for it; the context alone makes %v", a, own)
	}
}

// cancel() wakes a parked caller with ECANCELED long before the context's
// deadline: a sole caller on the bell, and callers on their channels.
func TestCancelWakesParkedCaller(t *testing.T) {
	for _, callers := range []int{1, 6} {
		t.Run(itoaTest(callers), func(t *testing.T) {
			cli := newTestEndpoint(t, func(cfg *Config) { cfg.DefaultTimeout = time.Minute })
			dst := deadAddr2(t) // silent: only the cancellation ends the calls
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			errc := make(chan error, callers)
			for i := 0; i < callers; i++ {
				go func() { errc <- cli.Call(ctx, dst, CallPing, nil, nil) }()
			}
			for i := 0; cli.watch.n.Load() != int32(callers); i++ {
				if i == 5000 {
					cancel()
					t.Fatalf("%d of %d callers under watch", cli.watch.n.Load(), callers)
				}
				time.Sleep(time.Millisecond)
			}
			if callers == 1 && cli.bell.raw != nil {
				waitBellHeld(t, cli)
			}
			cancel()
			for i := 0; i < callers; i++ {
				select {
				case err := <-errc:
					if wire.AsErrno(err) != wire.ECANCELED {
						t.Fatalf("got %v, want ECANCELED", err)
					}
				case <-time.After(20 * time.Second):
					cli.Close() // release the callers left
					t.Fatal("a cancelled caller was not woken")
				}
			}
			if n := cli.watch.n.Load(); n != 0 {
				t.Fatalf("%d calls still under watch", n)
			}
			if cli.bell.busy.Load() {
				t.Fatal("the bell is still held")
			}
		})
	}
}

// TestCancelEndsCall: a call whose context is cancelled returns
// ECANCELED within a tick of the cancellation (cancel.go), not at its
// timeout.
func TestCancelEndsCall(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		cli := w.endpoint(nil)
		const after = 20 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { time.Sleep(after); cancel() }()
		start := time.Now()
		err := cli.Call(ctx, w.deadAddr(), callAdd, params(func(p *wire.Params) { p.Int64(1); p.Int64(1) }), nil)
		took := time.Since(start)
		if wire.AsErrno(err) != wire.ECANCELED {
			t.Fatalf("got %v after %v", err, took)
		}
		if took < after || took > after+cli.tick {
			t.Fatalf("ECANCELED %v after the call, cancelled at %v (tick %v)", took, after, cli.tick)
		}
	})
}

// TestWatchPollEvery checks how often the timer goroutine asks watched
// contexts: once per MinRTO on a socket endpoint, whose every wake-up is a
// kernel timer and a thread woken through the poller, and once per tick on
// an endpoint whose goroutine sleeps on a runtime timer.
func TestWatchPollEvery(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MinRTO = 8 * time.Millisecond
	cfg.InitialRTO = cfg.MinRTO
	ep, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	// One caller under watch, with no context in its slot yet: the scan
	// finds nothing to end and polls on.
	ep.watch.bits[0].Or(1)
	ep.watch.n.Add(1)
	var due [64]timerEntry
	sweepAt := ep.Now() + int64(time.Hour)
	wait, again := ep.timerRound(&due, &sweepAt)
	if again {
		t.Fatal("again with nothing due")
	}
	want := ep.tick
	if ep.timers.alarm != nil {
		want = cfg.MinRTO
	}
	if wait != want {
		t.Fatalf("with a context under watch the goroutine sleeps %v, want %v (tick %v, MinRTO %v, alarm %v)",
			wait, want, ep.tick, cfg.MinRTO, ep.timers.alarm != nil)
	}
}

func itoaTest(n int) string {
	if n == 1 {
		return "sole"
	}
	return "many"
}

// endedContext is a context that has ended, and the error number a
// wait on it reports.
type endedContext struct {
	name string
	ctx  context.Context
	want wire.Errno
}

// endedContexts returns contexts that have ended every way: past their
// deadline (a child of one too) ETIMEDOUT, cancelled (before a deadline,
// or with none) ECANCELED. They are released when the test ends.
func endedContexts(t *testing.T) []endedContext {
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	t.Cleanup(cancelPast)
	child, cancelChild := context.WithCancel(past)
	t.Cleanup(cancelChild)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	early, cancelEarly := context.WithTimeout(context.Background(), time.Hour)
	cancelEarly()
	return []endedContext{
		{"deadline passed", past, wire.ETIMEDOUT},
		{"parent's deadline passed", child, wire.ETIMEDOUT},
		{"cancelled", cancelled, wire.ECANCELED},
		{"cancelled before its deadline", early, wire.ECANCELED},
	}
}

// TestContextErrno: a context that ended by its deadline is ETIMEDOUT,
// one cancelled before it (or with none) ECANCELED.
func TestContextErrno(t *testing.T) {
	for _, c := range endedContexts(t) {
		t.Run(c.name, func(t *testing.T) {
			if got := ContextErrno(c.ctx.Err()); got != c.want {
				t.Fatalf("ContextErrno(%v) = %v, want %v", c.ctx.Err(), got, c.want)
			}
		})
	}
}

// TestCallContextEnded: a call whose context has ended before it starts
// is not sent and fails as one that ended during the call would:
// ETIMEDOUT for a context past its deadline (a child of one too),
// ECANCELED for one cancelled before its deadline.
func TestCallContextEnded(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(nil)
		cli := w.endpoint(nil)
		for _, c := range endedContexts(t) {
			sent := cli.stats.tx.Load()
			err := cli.Call(c.ctx, srv.Addr(), callAdd, params(func(p *wire.Params) { p.Int64(1); p.Int64(1) }), nil)
			if got := wire.AsErrno(err); got != c.want {
				t.Errorf("%s: Call: %v, want %v", c.name, err, c.want)
			}
			_, err = cli.Go(c.ctx, srv.Addr(), callAdd, params(func(p *wire.Params) { p.Int64(1); p.Int64(1) }))
			if got := wire.AsErrno(err); got != c.want {
				t.Errorf("%s: Go: %v, want %v", c.name, err, c.want)
			}
			if n := cli.stats.tx.Load() - sent; n != 0 {
				t.Errorf("%s: %d datagrams sent", c.name, n)
			}
		}
	})
}
