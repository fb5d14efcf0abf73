package dispatch

// Tests of the remote calls: SUBMIT and STATUS over rfc (SubmitRemote,
// StatusRemote), what the dispatcher refuses from a remote caller, and
// what the client sends.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// rawSubmit sends cli's CallSubmit request, as build writes it, to the
// dispatcher at addr.
func rawSubmit(ctx context.Context, t *testing.T, cli *rfc.Endpoint, addr netip.AddrPort, build func(p *wire.Params)) error {
	t.Helper()
	var p wire.Params
	p.Reset(make([]byte, 1400))
	build(&p)
	if p.Err() != wire.OK {
		t.Fatalf("request: %v", p.Err())
	}
	return cli.Call(ctx, addr, CallSubmit, &p, nil)
}

// TestRemoteSubmitAndStatus: SUBMIT and paged STATUS over rfc from an
// unauthenticated client, and malformed requests answered with errors.
func TestRemoteSubmitAndStatus(t *testing.T) {
	ts := startTargets(t, 60)
	srv := newEP(t, 1, nil)
	d := newDispatcher(t, srv, NewMemStore(0), func(c *Config) { c.RemoteTargets = ts.addrs() })
	cli := newEP(t, 0, nil)
	ctx := ctxFor(t, 10*time.Second)
	op := opFor("remote/r", KindRead, workCall(5), ts.addrs(), 3*time.Second)
	id, err := SubmitRemote(ctx, cli, srv.Addr(), op)
	if err != nil {
		t.Fatalf("SubmitRemote: %v", err)
	}
	st, err := WaitRemote(ctx, cli, srv.Addr(), id, 5*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitRemote: %v", err)
	}
	if st.ID != id || st.State != StateDone || st.Targets != 60 || st.Done != 60 || st.Failed != 0 ||
		st.Kind != KindRead || st.Resource != "remote/r" || len(st.Outcomes) != 60 {
		t.Fatalf("status %+v", st)
	}
	for i, o := range st.Outcomes {
		if o.Addr != ts.eps[i].Addr() || !o.Done || o.Errno != wire.OK {
			t.Fatalf("outcome %d: %+v", i, o)
		}
	}
	local, _ := d.Status(id)
	if local.Done != st.Done || local.Elapsed/time.Microsecond != st.Elapsed/time.Microsecond {
		t.Fatalf("local %+v remote %+v", local, st)
	}
	if d.Stats().RemoteSubmits != 1 {
		t.Fatal("remote submit not counted")
	}

	// submit builds a well-formed CallSubmit request, changed by edit.
	submit := func(edit func(f *submitRequest)) func(p *wire.Params) {
		return func(p *wire.Params) {
			f := submitRequest{"x", "read", uint64(callIncr), nil, ts.eps[0].Addr().String(), 100}
			edit(&f)
			f.put(p)
		}
	}
	cases := []struct {
		name  string
		build func(p *wire.Params)
		want  wire.Errno
	}{
		{"bad-kind", submit(func(f *submitRequest) { f.kind = "write" }), wire.EINVAL},
		{"bad-target", submit(func(f *submitRequest) { f.targets += ",nonsense" }), wire.EINVAL},
		{"bad-segment", submit(func(f *submitRequest) { f.seg = []byte{1, 0, 8, 0} }), wire.EINVAL},
		{"call-zero", submit(func(f *submitRequest) { f.call = 0 }), wire.EINVAL},
		{"negative-deadline", submit(func(f *submitRequest) { f.deadlineMs = -1 }), wire.EINVAL},
		{"empty-resource", submit(func(f *submitRequest) { f.resource = "" }), wire.EINVAL},
		{"target-twice", submit(func(f *submitRequest) { f.targets += "," + f.targets }), wire.EINVAL},
		{"target-not-allowed", submit(func(f *submitRequest) { f.targets += "," + srv.Addr().String() }), wire.EPERM},
		{"deadline-past-remote-max", submit(func(f *submitRequest) { f.deadlineMs = 30000 }), wire.EINVAL},
		{"schema", func(p *wire.Params) { p.String("x") }, wire.EINVAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errnoOf(rawSubmit(ctx, t, cli, srv.Addr(), c.build)); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	if _, err := StatusRemote(ctx, cli, srv.Addr(), id+100); errnoOf(err) != wire.ENOENT {
		t.Fatalf("unknown id: %v", err)
	}
}

// TestRemoteSubmitNoReflection: one unauthenticated SUBMIT naming an
// address outside the dispatcher's RemoteTargets many times with a long
// deadline (a reflection attack: the dispatcher would send the victim a
// call and its retransmissions per repeat) is refused, and nothing is
// sent to anyone.
func TestRemoteSubmitNoReflection(t *testing.T) {
	ts := startTargets(t, 1)
	srv := newEP(t, 1, nil)
	d := newDispatcher(t, srv, NewMemStore(0), func(c *Config) { c.RemoteTargets = ts.addrs() })
	victim := rfctest.UDP(t)
	va := victim.LocalAddr().(*net.UDPAddr).AddrPort()
	cli := newEP(t, 0, nil)
	ctx := ctxFor(t, 10*time.Second)
	submit := func(targets []netip.AddrPort, deadline time.Duration) error {
		req := submitRequest{"victim", "read", uint64(callIncr), nil, FormatTargets(targets), int64(deadline / time.Millisecond)}
		return rawSubmit(ctx, t, cli, srv.Addr(), req.put)
	}
	var repeated []netip.AddrPort
	for i := 0; i < 50; i++ {
		repeated = append(repeated, va)
	}
	cases := []struct {
		name    string
		targets []netip.AddrPort
		dl      time.Duration
		want    wire.Errno
	}{
		{"victim-repeated", repeated, 30 * time.Second, wire.EINVAL},
		{"victim-once", []netip.AddrPort{va}, time.Second, wire.EPERM},
		{"victim-beside-allowed", []netip.AddrPort{ts.eps[0].Addr(), va}, time.Second, wire.EPERM},
		{"allowed-repeated", []netip.AddrPort{ts.eps[0].Addr(), ts.eps[0].Addr()}, time.Second, wire.EINVAL},
		{"allowed-long-deadline", []netip.AddrPort{ts.eps[0].Addr()}, 30 * time.Second, wire.EINVAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errnoOf(submit(c.targets, c.dl)); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	if st := d.Stats(); st.Sent != 0 || st.Submitted != 0 {
		t.Fatalf("refused submits sent calls: %+v", st)
	}
	// An allowed target, once, within the bounds, is served.
	if err := submit([]netip.AddrPort{ts.eps[0].Addr()}, time.Second); err != nil {
		t.Fatalf("allowed submit: %v", err)
	}
	if !waitFor(5*time.Second, func() bool { return ts.runs.Load() == 1 }) {
		t.Fatalf("allowed target ran %d times", ts.runs.Load())
	}
	// Nothing reached the victim: the one datagram it could have got
	// would have been sent before the allowed operation's.
	victim.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 2048)
	if n, err := victim.Read(buf); err == nil {
		t.Fatalf("victim received %d bytes", n)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
}

// TestStatusOfPreviousProcessUnknown: a client submitted an operation
// and the dispatcher restarted on its address before the client asked
// for its status; the new process has accepted an operation of its own.
// Asked for the id the previous process gave, the new one answers ENOENT
// (an id it never issued), not the status of its own operation, which
// the client would take for its own.
func TestStatusOfPreviousProcessUnknown(t *testing.T) {
	ts := startTargets(t, 1)
	cli := newEP(t, 0, nil)
	ep1 := newEP(t, 1, nil)
	addr := ep1.Addr()
	d1 := newDispatcher(t, ep1, NewMemStore(64), func(c *Config) { c.RemoteTargets = ts.addrs() })
	ctx := ctxFor(t, 5*time.Second)
	id1, err := SubmitRemote(ctx, cli, addr, opFor("mine", KindUpdate, workCall(0), ts.addrs(), time.Second))
	if err != nil {
		t.Fatalf("submit to the first process: %v", err)
	}
	d1.Close()
	ep1.Close()

	ep2 := newEP(t, 1, func(c *rfc.Config) { c.Addr = addr.String() })
	d2 := newDispatcher(t, ep2, NewMemStore(64), nil)
	id2, err := d2.Submit(ctx, opFor("theirs", KindUpdate, workCall(0), ts.addrs(), time.Second))
	if err != nil {
		t.Fatalf("submit to the new process: %v", err)
	}
	st, err := StatusRemote(ctx, cli, addr, id1)
	if errnoOf(err) != wire.ENOENT {
		t.Fatalf("status of id %d of the previous process (new op id %d): %q %v, want ENOENT", id1, id2, st.Resource, err)
	}
}

// TestOperationIDsApartFromClock: two dispatchers that start at the same
// wall-clock reading, as a restarted one does after the clock was
// stepped back (NTP, a restored VM), give different ids, so a client
// asking the new process for an id of the old one gets ENOENT, not the
// new process's operation. Ids grew from the wall clock at Start: in the
// bubble, where the clock stands still, both gave the same id and STATUS
// of the first answered the second's operation.
func TestOperationIDsApartFromClock(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(1)
		ep1, ep2 := w.ep(1, nil), w.ep(2, nil)
		d1 := newDispatcher(t, ep1, NewMemStore(0), nil)
		d2 := newDispatcher(t, ep2, NewMemStore(0), nil)
		ctx := ctxFor(t, 5*time.Second)
		id1, err := d1.Submit(ctx, opFor("mine", KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second))
		must(t, err)
		id2, err := d2.Submit(ctx, opFor("theirs", KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second))
		must(t, err)
		if id1 == id2 {
			t.Fatalf("both dispatchers gave id %d", id1)
		}
		cli := w.ep(3, nil)
		if st, err := StatusRemote(ctx, cli, ep2.Addr(), id1); errnoOf(err) != wire.ENOENT {
			t.Fatalf("status of the first dispatcher's id %d at the second: %q %v, want ENOENT", id1, st.Resource, err)
		}
	})
}

// TestSubmitRemoteDeadlineRounding: a CallSubmit carries the deadline in
// whole milliseconds and the dispatcher reads 0 as its default deadline.
// SubmitRemote rounds a deadline up, so that one below a millisecond is
// sent as 1 ms, not as 0 (which would run the operation for the
// dispatcher's default, seconds longer than the caller asked).
func TestSubmitRemoteDeadlineRounding(t *testing.T) {
	srv := newEP(t, 1, nil)
	got := make(chan int64, 1)
	must(t, srv.Register(CallSubmit, "dispatch-submit", schemaSubmit, 0, func(r *rfc.Request, rep *wire.Params) wire.Errno {
		got <- r.Param(subParamDeadline).Int64()
		rep.Uint64(1)
		return wire.OK
	}))
	cli := newEP(t, 0, nil)
	target := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {time.Nanosecond, 1}, {500 * time.Microsecond, 1}, {time.Millisecond, 1}, {1500 * time.Microsecond, 2}, {3 * time.Second, 3000},
	} {
		t.Run(fmt.Sprint(tc.d), func(t *testing.T) {
			ctx := ctxFor(t, 5*time.Second)
			if _, err := SubmitRemote(ctx, cli, srv.Addr(), opFor("r", KindRead, Call{No: callIncr}, target, tc.d)); err != nil {
				t.Fatalf("SubmitRemote: %v", err)
			}
			if ms := <-got; ms != tc.want {
				t.Fatalf("deadline %v sent as %d ms, want %d", tc.d, ms, tc.want)
			}
		})
	}
}

// TestSubmitSize: SubmitSize is the bound SubmitRemote applies. Across
// target counts on both sides of the datagram limit, SubmitRemote refuses
// the op with EMSGSIZE exactly when SubmitSize is past MaxDatagram (the
// others are sent, and end on the cancelled context).
func TestSubmitSize(t *testing.T) {
	ep := newEP(t, 1, nil)
	maxDg := ep.Config().MaxDatagram
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fits, past := 0, 0
	for n := 1; n <= 120; n++ {
		op := &Op{Resource: "r", Kind: KindUpdate, Call: Call{No: rfc.CallPing}}
		for i := 0; i < n; i++ {
			op.Targets = append(op.Targets, Target{Addr: netip.MustParseAddrPort(fmt.Sprintf("10.0.0.1:%d", 10000+i))})
		}
		_, err := SubmitRemote(ctx, ep, netip.MustParseAddrPort("127.0.0.1:9"), op)
		over := SubmitSize(op) > maxDg
		if (wire.AsErrno(err) == wire.EMSGSIZE) != over {
			t.Fatalf("%d targets: SubmitSize %d, MaxDatagram %d, SubmitRemote %v", n, SubmitSize(op), maxDg, err)
		}
		if over {
			past++
		} else {
			fits++
		}
	}
	if fits == 0 || past == 0 {
		t.Fatalf("%d target counts fit, %d did not: the range misses the bound", fits, past)
	}
}

// TestRemoteSubmitNoServiceCalls: a remote SUBMIT names the call its
// targets receive from the dispatcher's own address. One naming a call
// of fastcall's own services (wire.CallHeartbeatBase up to
// wire.CallToolBase) is refused EPERM and sends nothing: a SUBMIT of a
// SUBMIT to another dispatcher made it fan out in turn (one
// unauthenticated datagram, an operation per level of nesting, each
// multiplied by its targets), and a heartbeat, registry or route call
// would reach a member as the dispatcher's own. The engine's calls
// (ping, stats, calls) only read and stay allowed: a fan-out ping is a
// health check.
func TestRemoteSubmitNoServiceCalls(t *testing.T) {
	ts := startTargets(t, 1)
	srvB := newEP(t, 2, nil)
	dB := newDispatcher(t, srvB, NewMemStore(0), func(c *Config) { c.RemoteTargets = ts.addrs() })
	srvA := newEP(t, 1, nil)
	dA := newDispatcher(t, srvA, NewMemStore(0), func(c *Config) {
		c.RemoteTargets = append(ts.addrs(), srvB.Addr())
	})
	cli := newEP(t, 0, nil)
	ctx := ctxFor(t, 10*time.Second)

	inner := submitRequest{"inner", "read", uint64(callIncr), nil, ts.eps[0].Addr().String(), 1000}
	var ip wire.Params
	ip.Reset(make([]byte, 512))
	inner.put(&ip)
	nested := submitRequest{"outer", "read", uint64(CallSubmit), CallOf(CallSubmit, &ip).Seg, srvB.Addr().String(), 1000}
	if got := errnoOf(rawSubmit(ctx, t, cli, srvA.Addr(), nested.put)); got != wire.EPERM {
		t.Errorf("SUBMIT of a SUBMIT: got %v, want EPERM", got)
	}
	for _, no := range []uint16{wire.CallHeartbeatBase, wire.CallHeartbeatBase + 4, wire.CallRegistryBase, wire.CallRouteBase + 9, wire.CallToolBase - 1} {
		req := submitRequest{"svc", "read", uint64(no), nil, ts.eps[0].Addr().String(), 1000}
		if got := errnoOf(rawSubmit(ctx, t, cli, srvA.Addr(), req.put)); got != wire.EPERM {
			t.Errorf("call %#04x: got %v, want EPERM", no, got)
		}
	}
	// Had the nested SUBMIT gone out, B would have run the inner
	// operation on the target by now; give it the time it takes.
	time.Sleep(200 * time.Millisecond)
	if st := dA.Stats(); st.Sent != 0 || st.Submitted != 0 {
		t.Errorf("refused submits sent calls: %+v", st)
	}
	if n := dB.Stats().RemoteSubmits; n != 0 {
		t.Errorf("dispatcher B took %d SUBMITs from A", n)
	}
	if n := ts.runs.Load(); n != 0 {
		t.Errorf("target ran %d calls", n)
	}
	ping := submitRequest{"svc", "read", uint64(rfc.CallPing), nil, ts.eps[0].Addr().String(), 1000}
	if got := errnoOf(rawSubmit(ctx, t, cli, srvA.Addr(), ping.put)); got != wire.OK {
		t.Errorf("engine ping: got %v, want OK", got)
	}
}
