package rfc

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

// A datagram longer than MaxDatagram, up to the largest UDP payload, is
// counted as too-big and dropped; the reader stays up.
func TestOversizeDatagramDropped(t *testing.T) {
	for _, limit := range []int{wire.DefaultMaxDatagram, 4000} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			srv := newTestServer(t, func(c *Config) { c.MaxDatagram = limit })
			c := rawConn(t, srv.Endpoint)
			sizes := []int{limit + 1, limit + 2, 2000, 9000, wire.MaxDatagram}
			want := uint64(0)
			for _, n := range sizes {
				if n <= limit {
					continue
				}
				b := make([]byte, n)
				for i := range b {
					b[i] = 'x'
				}
				if _, err := c.Write(b); err != nil {
					t.Fatalf("write %d bytes: %v", n, err)
				}
				want++
			}
			if !waitFor(5*time.Second, func() bool { return srv.Stats().Drops["too-big"] >= want }) {
				t.Fatalf("too-big %d, want %d (drops %v)", srv.Stats().Drops["too-big"], want, srv.Stats().Drops)
			}
			cli := newTestEndpoint(t, func(c *Config) { c.MaxDatagram = limit })
			if err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
				t.Fatalf("call after oversize datagrams: %v", err)
			}
			if got := srv.Stats().Drops["too-big"]; got != want {
				t.Fatalf("too-big %d, want %d", got, want)
			}
		})
	}
}

// Every call started while Close runs ends with ECLOSED: none parks for
// ever, none reports another error. Close races with callers between
// their check of the closed flag and the moment their slot is marked
// waiting, so the test repeats the race many times.
func TestCloseEndsConcurrentCalls(t *testing.T) {
	srv := newTestServer(t, nil)
	const callers = 8
	trials := 400
	if testing.Short() {
		trials = 50
	}
	limit := time.Now().Add(8 * time.Second)
	trial := 0
	defer func() { t.Logf("%d trials", trial) }()
	for ; trial < trials && time.Now().Before(limit); trial++ {
		cli := newTestEndpoint(t, nil)
		var calls atomic.Int64
		first := make(chan struct{})
		var once sync.Once
		errs := make(chan error, callers+1)
		var wg sync.WaitGroup
		for g := 0; g < callers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				var rep Reply
				p := params(func(p *wire.Params) { p.Bytes([]byte("x")) })
				for i := 0; ; i++ {
					var err error
					switch g % 4 {
					case 0, 1: // no context deadline: the bell and the channel
						err = cli.Call(context.Background(), srv.Addr(), callEcho, p, &rep)
					case 2:
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						err = cli.Call(ctx, srv.Addr(), callEcho, p, &rep)
						cancel()
					case 3:
						done := make(chan error, 1)
						err = cli.GoFunc(srv.Addr(), callEcho, p, time.Minute, func(pd *Pending) { done <- pd.Err() })
						if err == nil {
							err = <-done
						}
					}
					if err != nil {
						errs <- err
						once.Do(func() { close(first) })
						return
					}
					calls.Add(1)
					once.Do(func() { close(first) })
				}
			}(g)
		}
		<-first
		cli.Close()
		ended := make(chan struct{})
		go func() { wg.Wait(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("trial %d: callers still parked 10s after Close (%d calls made, %d slots in use)",
				trial, calls.Load(), cli.pending.inUse())
		}
		close(errs)
		for err := range errs {
			if !errors.Is(err, wire.ECLOSED) {
				t.Fatalf("trial %d: call ended with %v, want ECLOSED", trial, err)
			}
		}
	}
}

// A destination given as an IPv4-mapped IPv6 address names the same peer
// as the plain IPv4 address the reader sees replies come from.
func TestMappedDestination(t *testing.T) {
	srv := newTestServer(t, nil)
	var oneway atomic.Int32
	if err := srv.Register(wire.CallUserBase+20, "oneway", nil, OneWay|Idempotent|Inline, func(*Request, *wire.Params) wire.Errno {
		oneway.Add(1)
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	ua, err := net.ResolveUDPAddr("udp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	dst := ua.AddrPort()
	if !dst.Addr().Is4In6() {
		a := srv.Addr().Addr().As16()
		dst = netip.AddrPortFrom(netip.AddrFrom16(a), srv.Addr().Port())
	}
	cli := newTestEndpoint(t, func(c *Config) { c.DefaultTimeout = 5 * time.Second })
	echo := params(func(p *wire.Params) { p.Bytes([]byte("mapped")) })
	var rep Reply
	if err := cli.Call(ctxTimeout(t, 5*time.Second), dst, callEcho, echo, &rep); err != nil {
		t.Fatalf("Call to %v: %v", dst, err)
	}
	if err := cli.Probe(ctxTimeout(t, 5*time.Second), dst, CallPing, nil, nil); err != nil {
		t.Fatalf("Probe to %v: %v", dst, err)
	}
	pd, err := cli.Go(ctxTimeout(t, 5*time.Second), dst, callEcho, echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := pd.Wait(); err != nil {
		t.Fatalf("Go to %v: %v", dst, err)
	}
	pd.Release()
	done := make(chan error, 1)
	if err := cli.GoFunc(dst, callEcho, echo, 5*time.Second, func(p *Pending) { done <- p.Err() }); err != nil {
		t.Fatal(err)
	}
	waitResult(t, done, "GoFunc to "+dst.String())
	if err := cli.Send(dst, wire.CallUserBase+20, nil); err != nil {
		t.Fatalf("Send to %v: %v", dst, err)
	}
	if !waitFor(5*time.Second, func() bool { return oneway.Load() == 1 }) {
		t.Fatal("one-way request not served")
	}
	st := cli.Stats()
	// A late reply is one that matched no waiting call: only the answer
	// to a retransmission may be one (a loaded machine resends); before
	// destinations were normalised every reply to a mapped call was.
	resent := allRetrans(st)
	if st.Drops["late-reply"] > resent || st.Peers != 1 {
		t.Fatalf("late replies %d (retransmissions %d), peers %d: the mapped and plain address were two peers",
			st.Drops["late-reply"], resent, st.Peers)
	}
}

// A timeout too long for the engine clock is no timeout in practice: the
// call succeeds and the peer is not charged a miss.
func TestHugeTimeout(t *testing.T) {
	srv := newTestServer(t, nil)
	cli := newTestEndpoint(t, func(c *Config) { c.DefaultTimeout = math.MaxInt64 })
	far, cancel := context.WithDeadline(context.Background(), time.Unix(1<<62, 0))
	defer cancel()
	// Each call runs on its own goroutine, so that a call that never
	// ends fails the test instead of hanging it.
	check := func(what string, call func() error) {
		t.Helper()
		res := make(chan error, 1)
		go func() { res <- call() }()
		waitResult(t, res, what)
	}
	check("default timeout", func() error { return cli.Call(context.Background(), srv.Addr(), CallPing, nil, nil) })
	check("far deadline", func() error { return cli.Call(far, srv.Addr(), CallPing, nil, nil) })
	check("Go", func() error {
		pd, err := cli.Go(far, srv.Addr(), CallPing, nil)
		if err != nil {
			return err
		}
		defer pd.Release()
		return pd.Wait()
	})
	check("GoFunc", func() error {
		done := make(chan error, 1)
		if err := cli.GoFunc(srv.Addr(), CallPing, nil, math.MaxInt64, func(p *Pending) { done <- p.Err() }); err != nil {
			return err
		}
		return <-done
	})
	info, ok := cli.Peer(srv.Addr())
	if !ok || info.State != PeerAlive {
		t.Fatalf("peer %+v after calls with huge timeouts", info)
	}
	for _, c := range cli.Stats().Called {
		if len(c.Errors) != 0 {
			t.Fatalf("call %d errors %v", c.CallNo, c.Errors)
		}
	}
}

// Durations the engine adds to its clock unsaturated are bounded, and a
// value out of range is refused with an error naming the field.
func TestConfigDurationBounds(t *testing.T) {
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"DefaultTimeout", func(c *Config) { c.DefaultTimeout = -1 }},
		{"MaxRTO", func(c *Config) { c.MaxRTO = math.MaxInt64 }},
		{"DupAge", func(c *Config) { c.DupAge = math.MaxInt64 }},
		{"MaxAge", func(c *Config) { c.MaxAge = math.MaxInt64 }},
	} {
		cfg := DefaultConfig()
		tc.mod(&cfg)
		ep, err := Open(cfg)
		if err == nil {
			ep.Close()
			t.Fatalf("%s: config accepted", tc.field)
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Fatalf("%s: error %v", tc.field, err)
		}
	}
	cfg := DefaultConfig()
	cfg.DefaultTimeout = math.MaxInt64
	ep, err := Open(cfg)
	if err != nil {
		t.Fatalf("largest DefaultTimeout refused: %v", err)
	}
	ep.Close()
}

// TestMappedLivenessMarks: the liveness calls take a destination the way
// calls do, so MarkDead on the IPv4-mapped form of an address fails the
// calls parked on it, and Peer and MarkAlive find the same entry.
func TestMappedLivenessMarks(t *testing.T) {
	plain := silentAddr(t)
	mapped := netip.AddrPortFrom(netip.AddrFrom16(plain.Addr().As16()), plain.Port())
	cli := newTestEndpoint(t, nil)
	pd, err := cli.Go(ctxTimeout(t, 20*time.Second), plain, callEcho, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := cli.MarkDead(mapped); n != 1 {
		t.Fatalf("MarkDead(%v) failed %d calls, want the one parked on %v", mapped, n, plain)
	}
	if err := pd.Wait(); wire.AsErrno(err) != wire.ENODEAD {
		t.Fatalf("parked call: %v, want ENODEAD", err)
	}
	pd.Release()
	if info, ok := cli.Peer(mapped); !ok || info.State != PeerDead {
		t.Fatalf("Peer(%v) = %+v %v, want the dead entry", mapped, info, ok)
	}
	cli.MarkAlive(mapped)
	if info, _ := cli.Peer(plain); info.State != PeerAlive {
		t.Fatalf("after MarkAlive(%v), %v is %v", mapped, plain, info.State)
	}
}
