package rfc

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/wire"
)

func TestCallRoundTrip(t *testing.T) {
	srv, cli := newTestPair(t)
	var rep Reply
	err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), callAdd, params(func(p *wire.Params) { p.Int64(40); p.Int64(2) }), &rep)
	if err != nil || rep.Param(0).Int64() != 42 {
		t.Fatalf("add: %v %v", err, rep.Param(0).Int64())
	}
	for _, no := range []uint16{callEcho, callEchoW} {
		err = cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), no, params(func(p *wire.Params) { p.Bytes([]byte("hello")) }), &rep)
		if err != nil || !bytes.Equal(rep.Param(0).Bytes(), []byte("hello")) {
			t.Fatalf("echo %d: %v", no, err)
		}
	}
}

func TestErrorPaths(t *testing.T) {
	srv := newTestServer(t, func(c *Config) { c.Workers = 1; c.QueueLen = 1 })
	cli := newTestEndpoint(t, nil)
	dead := newTestEndpoint(t, nil)
	deadAddr := dead.Addr()
	dead.Close()
	cases := []struct {
		name   string
		dst    func() netip.AddrPort
		callNo uint16
		p      func(p *wire.Params)
		to     time.Duration
		want   wire.Errno
	}{
		{"ENOCALL", srv.Addr, wire.CallUserBase + 999, nil, time.Second, wire.ENOCALL},
		{"EINVAL-type", srv.Addr, callAdd, func(p *wire.Params) { p.Int64(1); p.String("x") }, time.Second, wire.EINVAL},
		{"EINVAL-count", srv.Addr, callAdd, func(p *wire.Params) { p.Int64(1) }, time.Second, wire.EINVAL},
		{"EINVAL-extra", srv.Addr, callAdd, func(p *wire.Params) { p.Int64(1); p.Int64(2); p.Int64(3) }, time.Second, wire.EINVAL},
		{"EFAULT", srv.Addr, callPanic, nil, time.Second, wire.EFAULT},
		{"EMSGSIZE-request", srv.Addr, callEcho, func(p *wire.Params) { p.Bytes(make([]byte, 1500)) }, time.Second, wire.EMSGSIZE},
		{"EMSGSIZE-reply", srv.Addr, callBig, nil, time.Second, wire.EMSGSIZE},
		{"EUSER", srv.Addr, callUserErr, nil, time.Second, wire.EUSER + 5},
		{"ETIMEDOUT", func() netip.AddrPort { return deadAddr }, callAdd, func(p *wire.Params) { p.Int64(1); p.Int64(2) }, 100 * time.Millisecond, wire.ETIMEDOUT},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ps *wire.Params
			if tc.p != nil {
				ps = params(tc.p)
			}
			err := cli.Call(ctxTimeout(t, tc.to), tc.dst(), tc.callNo, ps, nil)
			if wire.AsErrno(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// The endpoint is still up after the panic.
	if err := cli.Call(ctxTimeout(t, time.Second), srv.Addr(), callAdd, params(func(p *wire.Params) { p.Int64(1); p.Int64(1) }), nil); err != nil {
		t.Fatalf("after panic: %v", err)
	}

	t.Run("EBUSY", func(t *testing.T) {
		// One worker, queue of one: a sleeping call holds the worker,
		// another fills the queue, the rest are answered EBUSY.
		var ps []*Pending
		busy := 0
		for i := 0; i < 8; i++ {
			p, err := cli.Go(ctxTimeout(t, 3*time.Second), srv.Addr(), callSleep, params(func(p *wire.Params) { p.Int64(300) }))
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		for _, p := range ps {
			if wire.AsErrno(p.Wait()) == wire.EBUSY {
				busy++
			}
			p.Release()
		}
		if busy < 5 {
			t.Fatalf("%d EBUSY replies, want at least 5", busy)
		}
	})
}

// TestMarkDeadFailsParked: a call parked on a peer fails with ENODEAD
// the instant the peer is declared dead, long before its deadline; a new
// call to the dead peer fails at once; a peer heard again is alive. In
// virtual time, so "at once" is exact.
func TestMarkDeadFailsParked(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(nil)
		cli := w.endpoint(nil)
		addr := w.deadAddr()
		add := func(p *wire.Params) { p.Int64(1); p.Int64(1) }
		p, err := cli.Go(ctxTimeout(t, 10*time.Second), addr, callAdd, params(add))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the call is parked
		start := time.Now()
		if n := cli.MarkDead(addr); n != 1 {
			t.Fatalf("MarkDead failed %d calls, want 1", n)
		}
		if err := p.Wait(); wire.AsErrno(err) != wire.ENODEAD {
			t.Fatalf("parked call: %v", err)
		}
		p.Release()
		if d := time.Since(start); d != 0 {
			t.Fatalf("ENODEAD %v after MarkDead, want at once", d)
		}
		err = cli.Call(ctxTimeout(t, 10*time.Second), addr, callAdd, params(add), nil)
		if wire.AsErrno(err) != wire.ENODEAD || time.Since(start) != 0 {
			t.Fatalf("new call to dead peer: %v after %v", err, time.Since(start))
		}
		if info, _ := cli.Peer(addr); info.State != PeerDead {
			t.Fatalf("peer state %v", info.State)
		}
		// Heard again: alive, calls go through.
		cli.MarkDead(srv.Addr())
		if err := cli.Probe(ctxTimeout(t, time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
			t.Fatalf("probe: %v", err)
		}
		if info, _ := cli.Peer(srv.Addr()); info.State != PeerAlive {
			t.Fatalf("heard peer state %v", info.State)
		}
	})
}

// TestMarkDeadDuringCallStart: a call that starts while its peer is
// declared dead fails with ENODEAD, whichever comes first, never parks on
// the dead peer until its deadline: here the call has found the peer
// alive and waits for the slot table when MarkDead marks the peer and
// sweeps the slots (the call's slot not yet among them).
func TestMarkDeadDuringCallStart(t *testing.T) {
	cli := newTestEndpoint(t, nil)
	addr := silentAddr(t)
	cli.pending.mu.Lock()
	res := make(chan error, 1)
	go func() { res <- cli.Call(ctxTimeout(t, 500*time.Millisecond), addr, CallPing, nil, nil) }()
	// The call has looked the peer up (made its entry) before it takes a
	// slot; the pause lets it pass the dead check to the table's lock.
	for _, ok := cli.Peer(addr); !ok; _, ok = cli.Peer(addr) {
		runtime.Gosched()
	}
	time.Sleep(time.Millisecond)
	if n := cli.MarkDead(addr); n != 0 {
		t.Fatalf("MarkDead failed %d calls before the call took its slot", n)
	}
	cli.pending.mu.Unlock()
	if err := <-res; wire.AsErrno(err) != wire.ENODEAD {
		t.Fatalf("call started while its peer was declared dead: %v, want ENODEAD", err)
	}
}

func deadAddr2(t *testing.T) netip.AddrPort {
	e := newTestEndpoint(t, nil)
	a := e.Addr()
	e.Close()
	return a
}

func TestSuspectAfterMisses(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		cli := w.endpoint(func(c *Config) { c.SuspectAfter = 2 })
		addr := w.deadAddr()
		var mu sync.Mutex
		var states []PeerState
		cli.OnPeerChange(func(pi PeerInfo) { mu.Lock(); states = append(states, pi.State); mu.Unlock() })
		for i := 0; i < 2; i++ {
			if info, _ := cli.Peer(addr); i > 0 && info.State != PeerAlive {
				t.Fatalf("state %v after %d missed call", info.State, i)
			}
			err := cli.Call(ctxTimeout(t, 30*time.Millisecond), addr, CallPing, nil, nil)
			if wire.AsErrno(err) != wire.ETIMEDOUT {
				t.Fatalf("call %d to nobody: %v", i, err)
			}
		}
		synctest.Wait()
		info, _ := cli.Peer(addr)
		mu.Lock()
		defer mu.Unlock()
		if info.State != PeerSuspect || len(states) != 1 || states[0] != PeerSuspect {
			t.Fatalf("state %v, events %v", info.State, states)
		}
	})
}

// TestCloseFailsParkedCallers: Close fails a caller parked on a call in
// its callee's handler with ECLOSED at once, and later calls too.
func TestCloseFailsParkedCallers(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(nil)
		cli := w.endpoint(nil)
		p, err := cli.Go(ctxTimeout(t, 5*time.Second), srv.Addr(), callSleep, params(func(p *wire.Params) { p.Int64(300) }))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the call is in the handler, its caller parked
		if n := cli.Stats().Pending; n != 1 {
			t.Fatalf("%d calls pending, want 1", n)
		}
		start := time.Now()
		cli.Close()
		if err := p.Wait(); wire.AsErrno(err) != wire.ECLOSED || time.Since(start) != 0 {
			t.Fatalf("parked caller after Close: %v after %v", err, time.Since(start))
		}
		if err := cli.Call(context.Background(), srv.Addr(), CallPing, nil, nil); wire.AsErrno(err) != wire.ECLOSED {
			t.Fatalf("call after Close: %v", err)
		}
	})
}

func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		cfg := DefaultConfig()
		cfg.Readers, cfg.Workers = 2, 3
		a, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Listen(DefaultConfig())
		_ = b.Call(ctxTimeout(t, time.Second), a.Addr(), CallPing, nil, nil)
		a.Close()
		b.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Workers = 0 },
		func(c *Config) { c.MaxDatagram = 70000 },
		func(c *Config) { c.Key = []byte("short") },
		func(c *Config) { c.MinRTO = 0 },
		func(c *Config) { c.Addr = "not an address" },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if ep, err := Listen(cfg); err == nil {
			ep.Close()
			t.Fatalf("config accepted: %+v", cfg)
		}
	}
}

func TestRegisterRules(t *testing.T) {
	ep := newTestEndpoint(t, nil)
	h := func(*Request, *wire.Params) wire.Errno { return wire.OK }
	if ep.Register(CallPing, "x", nil, 0, h) != wire.EINVAL {
		t.Fatal("engine range accepted")
	}
	if ep.Register(wire.CallUserBase, "x", nil, 0, h) != nil {
		t.Fatal("register failed")
	}
	if ep.Register(wire.CallUserBase, "x", nil, 0, h) != wire.EEXIST {
		t.Fatal("double register accepted")
	}
	if ep.Register(wire.CallUserBase+1, "x", nil, 0, nil) != wire.EINVAL {
		t.Fatal("nil handler accepted")
	}
	// The engine's range ends where the services' begins.
	if ep.Register(wire.CallHeartbeatBase-1, "x", nil, 0, h) != wire.EINVAL {
		t.Fatal("last engine number accepted")
	}
	if err := ep.Register(wire.CallHeartbeatBase, "x", nil, 0, h); err != nil {
		t.Fatalf("first service number refused: %v", err)
	}
}

func TestMalformedDatagramsCounted(t *testing.T) {
	srv := newTestServer(t, nil)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	junk := [][]byte{{1, 2, 3}, make([]byte, 100), bytes.Repeat([]byte{0xfc, 0xa1}, 40)}
	for _, j := range junk {
		c.Write(j)
	}
	// A well-formed request with a bad parameter gets an EPROTO reply.
	codec, _ := wire.NewCodec(0, nil)
	h := wire.Header{Flags: wire.FlagRequest, CallNo: callAdd, CallID: 77}
	dg := make([]byte, 200)
	n, _ := codec.Encode(dg, &h, []byte{9, 0, 0}, 1)
	c.Write(dg[:n])
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	rb := make([]byte, 1500)
	rn, err := c.Read(rb)
	if err != nil {
		t.Fatalf("no error reply: %v", err)
	}
	var pk wire.Packet
	if r := codec.Decode(&pk, rb[:rn]); r != wire.ReasonNone || pk.Errno != wire.EPROTO || pk.CallID != 77 {
		t.Fatalf("reply %v errno %v id %d", r, pk.Errno, pk.CallID)
	}
	// Still serving.
	cli := newTestEndpoint(t, nil)
	if err := cli.Call(ctxTimeout(t, time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	if st.Drops["short"] < 1 || st.Drops["magic"] < 1 || st.Drops["param-type"] != 1 {
		t.Fatalf("drops %v", st.Drops)
	}
}

func TestStatsCallPages(t *testing.T) {
	srv, cli := newTestPair(t)
	h := func(*Request, *wire.Params) wire.Errno { return wire.OK }
	for i := 0; i < 40; i++ {
		no := wire.CallUserBase + 100 + uint16(i)
		if err := srv.Register(no, "many", nil, Idempotent, h); err != nil {
			t.Fatal(err)
		}
		if err := cli.Call(ctxTimeout(t, time.Second), srv.Addr(), no, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint64]bool{}
	var rep Reply
	cursor := uint64(0)
	for pages := 0; ; pages++ {
		if pages > 40 {
			t.Fatal("stats pages do not end")
		}
		if err := cli.Call(ctxTimeout(t, time.Second), srv.Addr(), CallStats, params(func(p *wire.Params) { p.Uint64(cursor); p.Bytes(make([]byte, 400)) }), &rep); err != nil {
			t.Fatalf("stats page %d: %v", pages, err)
		}
		for i := 1; i < rep.NParams(); i += statsEntryParams {
			seen[rep.Param(i).Uint64()] = true
		}
		if cursor = rep.Param(0).Uint64(); cursor == 0 {
			break
		}
	}
	for i := 0; i < 40; i++ {
		if !seen[uint64(wire.CallUserBase+100+uint16(i))] {
			t.Fatalf("call %d missing from stats pages", i)
		}
	}
	if err := cli.Call(ctxTimeout(t, time.Second), srv.Addr(), CallEngineStats, params(func(p *wire.Params) { p.Bytes(make([]byte, 400)) }), &rep); err != nil || rep.NParams() < 10 {
		t.Fatalf("engine stats: %v %d", err, rep.NParams())
	}
}

// TestRestartFencing: a non-idempotent request addressed to an earlier
// incarnation of the callee is refused with ESTALE, not run.
func TestRestartFencing(t *testing.T) {
	srv, cli := newTestPair(t)
	if err := cli.Call(ctxTimeout(t, time.Second), srv.Addr(), callIncr, nil, nil); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	srv.Close()
	srv2 := newTestServer(t, func(c *Config) { c.Addr = addr.String() })
	// The client still believes the old incarnation.
	err := cli.Call(ctxTimeout(t, time.Second), addr, callIncr, nil, nil)
	if wire.AsErrno(err) != wire.ESTALE || srv2.runs.Load() != 0 {
		t.Fatalf("call to a restarted callee: %v, runs %d", err, srv2.runs.Load())
	}
	// The error reply taught the client the new incarnation.
	if err := cli.Call(ctxTimeout(t, time.Second), addr, callIncr, nil, nil); err != nil || srv2.runs.Load() != 1 {
		t.Fatalf("next call: %v, runs %d", err, srv2.runs.Load())
	}
	// Idempotent calls are not fenced; raised incarnations stay ours.
	srv2.SetIncarnation(srv2.Incarnation() + 5)
	if err := cli.Call(ctxTimeout(t, time.Second), addr, callIncr, nil, nil); err != nil {
		t.Fatalf("after refutation: %v", err)
	}
}

// TestShutdownAnswersInFlight: calls running when Shutdown starts get
// their replies; calls arriving after are refused with ECLOSED. The
// running calls are held in their handler until the refusal was seen.
func TestShutdownAnswersInFlight(t *testing.T) {
	srv := newTestServer(t, nil)
	const callHold = wire.CallUserBase + 40
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release) // a failing test does not leave handlers blocked
	if err := srv.Register(callHold, "hold", nil, 0, func(*Request, *wire.Params) wire.Errno {
		select {
		case <-hold:
		case <-time.After(20 * time.Second):
		}
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	cli := newTestEndpoint(t, nil)
	var ps []*Pending
	for i := 0; i < 3; i++ {
		p, err := cli.Go(ctxTimeout(t, 30*time.Second), srv.Addr(), callHold, nil)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// poll waits for cond, which the test needs before it goes on.
	poll := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				release()
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	poll("the three calls to reach the server", func() bool { return srv.busy.Load() == 3 })
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(30 * time.Second) }()
	poll("Shutdown to start draining", srv.draining.Load)
	err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), callAdd, params(func(p *wire.Params) { p.Int64(1); p.Int64(1) }), nil)
	release()
	if wire.AsErrno(err) != wire.ECLOSED {
		t.Fatalf("call during shutdown: %v", err)
	}
	for i, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatalf("in-flight call %d: %v", i, err)
		}
		p.Release()
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestDrainWaitsInline: a request the reader has taken counts as in flight
// for Drain until it is answered, an Inline call's too, so that no
// handler runs after Drain returned. In virtual time: Drain is called
// while an Inline handler runs on the reader and returns only after it.
func TestDrainWaitsInline(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.endpoint(nil)
		const callHold = wire.CallUserBase + 41
		hold := make(chan struct{})
		var running, ran atomic.Bool
		if err := srv.Register(callHold, "hold-inline", nil, Inline, func(*Request, *wire.Params) wire.Errno {
			running.Store(true)
			<-hold
			ran.Store(true)
			return wire.OK
		}); err != nil {
			t.Fatal(err)
		}
		cli := w.endpoint(nil)
		p, err := cli.Go(ctxTimeout(t, 30*time.Second), srv.Addr(), callHold, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Release()
		synctest.Wait()
		if !running.Load() {
			t.Fatal("the inline handler is not running; the test shows nothing")
		}
		const later = 3 * time.Second
		drained := make(chan struct{})
		go func() {
			srv.Drain(10 * time.Second)
			close(drained)
		}()
		time.Sleep(later)
		select {
		case <-drained:
			close(hold)
			t.Fatalf("Drain returned while an inline handler runs (handler done %v)", ran.Load())
		default:
		}
		close(hold)
		<-drained
		if err := p.Wait(); err != nil {
			t.Fatalf("inline call across Drain: %v", err)
		}
	})
}
