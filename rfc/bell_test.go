package rfc

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

// bellCall is a Call with a context that cannot be cancelled, so that a
// sole caller waits on the bell.
func bellCall(ep *Endpoint, dst netip.AddrPort, no uint16, p *wire.Params, rep *Reply) error {
	return ep.Call(context.Background(), dst, no, p, rep)
}

func needBell(t *testing.T, ep *Endpoint) {
	t.Helper()
	if ep.bell.raw == nil {
		t.Skip("no doorbell on this platform")
	}
}

func TestBellSoleCaller(t *testing.T) {
	srv, cli := newTestPair(t)
	needBell(t, cli)
	var rep Reply
	for i := 0; i < 200; i++ {
		p := params(func(p *wire.Params) { p.Int64(int64(i)); p.Int64(1) })
		if err := bellCall(cli, srv.Addr(), callAdd, p, &rep); err != nil {
			t.Fatal(err)
		}
		if got := rep.Param(0).Int64(); got != int64(i)+1 {
			t.Fatalf("add %d+1 = %d", i, got)
		}
	}
	// A call whose reply came before its caller reached the bell does
	// not wait at all (on a loaded machine, many may not).
	w := cli.bell.waits.Load()
	if w == 0 || w > 200 {
		t.Fatalf("%d of 200 sequential calls waited on the bell", w)
	}
}

// waitBellHeld waits until a caller of ep holds the bell.
func waitBellHeld(t *testing.T, ep *Endpoint) {
	t.Helper()
	for i := 0; !ep.bell.busy.Load(); i++ {
		if i == 5000 {
			t.Fatal("no caller took the bell")
		}
		time.Sleep(time.Millisecond)
	}
}

// Every way a call ends other than its reply must wake a caller on the
// bell: its deadline, MarkDead and Close. The calls go to a silent
// address with a long default timeout, so a missed wake-up shows as
// ETIMEDOUT instead of the expected error.
func TestBellWakeups(t *testing.T) {
	cases := []struct {
		name string
		end  func(ep *Endpoint, dst netip.AddrPort)
		want wire.Errno
	}{
		{"deadline", nil, wire.ETIMEDOUT},
		{"MarkDead", func(ep *Endpoint, dst netip.AddrPort) { ep.MarkDead(dst) }, wire.ENODEAD},
		{"Close", func(ep *Endpoint, dst netip.AddrPort) { ep.Close() }, wire.ECLOSED},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			timeout := 30 * time.Second
			if c.end == nil {
				timeout = 50 * time.Millisecond
			}
			cli := newTestEndpoint(t, func(cfg *Config) { cfg.DefaultTimeout = timeout })
			needBell(t, cli)
			dst := deadAddr2(t)
			errc := make(chan error, 1)
			// A deadline this short can end the hold before a poll sees
			// it on a loaded machine: that the caller waited is read from
			// the bell's count once the call returns, and a call whose
			// deadline passed before it reached the bell is made again.
			for try := 1; ; try++ {
				waits := cli.bell.waits.Load()
				go func() { errc <- bellCall(cli, dst, CallPing, nil, nil) }()
				if c.end != nil {
					waitBellHeld(t, cli)
					c.end(cli, dst)
				}
				select {
				case err := <-errc:
					if wire.AsErrno(err) != c.want {
						t.Fatalf("got %v, want %v", err, c.want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the caller on the bell was not woken")
				}
				if cli.bell.busy.Load() {
					t.Fatal("the bell is still held")
				}
				if c.end != nil || cli.bell.waits.Load() > waits {
					break
				}
				if try == 20 {
					t.Fatal("no call reached the bell before its deadline")
				}
			}
		})
	}
}

// Concurrent callers share the bell with callers on channels; every call
// gets its own reply.
func TestBellConcurrentCallers(t *testing.T) {
	srv, cli := newTestPair(t)
	needBell(t, cli)
	concurrentAdds(t, cli, srv.Addr(), 8, 300, context.Background)
	if cli.bell.busy.Load() {
		t.Fatal("the bell is still held")
	}
}

// TestCallDuringStart: a service started between Open and Start (a
// registry center with a peer) may call at any moment; a call that
// begins while Start runs (started set, bell not yet set up) must not
// race with Start.
func TestCallDuringStart(t *testing.T) {
	srv := newTestServer(t, nil)
	for round := 0; round < 20; round++ {
		cfg := DefaultConfig()
		cfg.Addr = "127.0.0.1:0"
		ep, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
					ep.Call(ctx, srv.Addr(), CallPing, nil, nil)
					cancel()
				}
			}()
		}
		if err := ep.Start(); err != nil {
			t.Fatal(err)
		}
		stop.Store(true)
		wg.Wait()
		ep.Close()
	}
}
