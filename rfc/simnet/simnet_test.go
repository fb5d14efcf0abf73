package simnet_test

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

const callEcho = wire.CallUserBase + 1

// pair runs fn with a network and two started endpoints on it, a server
// answering callEcho and a client.
func pair(t *testing.T, seed uint64, f simnet.Faults, fn func(n *simnet.Network, srv, cli *rfc.Endpoint)) {
	n := simnet.New(seed, f, nil)
	defer n.Close()
	sa, ca := netip.MustParseAddrPort("10.0.0.1:7000"), netip.MustParseAddrPort("10.0.0.2:7000")
	cfg := rfc.DefaultConfig()
	cfg.NodeID = 1
	srv, err := rfc.OpenTransport(cfg, n.Attach(sa))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Register(callEcho, "echo", wire.Schema{wire.TypeUint64}, 0, func(req *rfc.Request, reply *wire.Params) wire.Errno {
		reply.Uint64(req.Param(0).Uint64() + 1)
		return wire.OK
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	cfg.NodeID = 2
	cli, err := rfc.ListenTransport(cfg, n.Attach(ca))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	fn(n, srv, cli)
}

func echo(cli *rfc.Endpoint, dst netip.AddrPort, v uint64, timeout time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var p wire.Params
	p.Reset(make([]byte, 64))
	p.Uint64(v)
	var r rfc.Reply
	if err := cli.Call(ctx, dst, callEcho, &p, &r); err != nil {
		return 0, err
	}
	return r.Param(0).Uint64(), nil
}

// TestCallOverSimnet: a call crosses the simulated network in virtual
// time, its round trip is the configured delay, and a partition turns it
// into ETIMEDOUT at its deadline.
func TestCallOverSimnet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := simnet.Faults{Delay: simnet.Dist{Base: 5 * time.Millisecond}}
		pair(t, 1, f, func(n *simnet.Network, srv, cli *rfc.Endpoint) {
			// The first non-idempotent call learns the server's
			// incarnation (an ESTALE round trip); the second is one
			// round trip.
			if _, err := echo(cli, srv.Addr(), 0, time.Second); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			v, err := echo(cli, srv.Addr(), 41, time.Second)
			if err != nil || v != 42 {
				t.Fatalf("echo = %d, %v; want 42, nil", v, err)
			}
			if rtt := time.Since(start); rtt != 10*time.Millisecond {
				t.Errorf("virtual round trip %v, want 10ms", rtt)
			}
			n.Cut(cli.Addr(), srv.Addr())
			start = time.Now()
			if _, err := echo(cli, srv.Addr(), 1, 300*time.Millisecond); err != wire.ETIMEDOUT {
				t.Fatalf("echo across a cut = %v, want ETIMEDOUT", err)
			}
			if d := time.Since(start); d < 300*time.Millisecond || d > 301*time.Millisecond {
				t.Errorf("timed out after %v, want 300ms", d)
			}
			n.Heal(cli.Addr(), srv.Addr())
			if v, err := echo(cli, srv.Addr(), 1, time.Second); err != nil || v != 2 {
				t.Fatalf("echo after heal = %d, %v", v, err)
			}
		})
	})
}

// TestLossyLinkDeterministic: under loss, duplication, reordering and
// corruption, calls still succeed by retransmission, and the same seed
// gives the same trace hash twice.
func TestLossyLinkDeterministic(t *testing.T) {
	f := simnet.Faults{Loss: 0.2, Dup: 0.1, Reorder: 0.2, Corrupt: 0.05, ReorderBy: 20 * time.Millisecond,
		Delay: simnet.Dist{Base: time.Millisecond, Jitter: 2 * time.Millisecond, TailP: 0.05, Tail: 50 * time.Millisecond}}
	if raceEnabled {
		t.Skip("the race detector reorders goroutines made ready together: a seed does not replay exactly under -race")
	}
	// One processor, as make sim runs: synctest makes time virtual, not
	// the order in which two processors run goroutines.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	run := func() (uint64, uint64) {
		var c, h uint64
		synctest.Test(t, func(t *testing.T) {
			pair(t, 7, f, func(n *simnet.Network, srv, cli *rfc.Endpoint) {
				for i := uint64(0); i < 200; i++ {
					v, err := echo(cli, srv.Addr(), i, 5*time.Second)
					if err != nil || v != i+1 {
						t.Fatalf("echo %d = %d, %v", i, v, err)
					}
				}
				c, h = n.Trace().Hash()
			})
		})
		return c, h
	}
	c1, h1 := run()
	c2, h2 := run()
	if c1 != c2 || h1 != h2 {
		t.Errorf("same seed, different traces: %d events hash %x, then %d events hash %x", c1, h1, c2, h2)
	}
	t.Logf("%d events, hash %x", c1, h1)
}

// TestPauseAndCrash: a paused server answers nothing until resumed, then
// answers what waited; a crashed address drops everything; a restarted
// one has a new incarnation.
func TestPauseAndCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := simnet.Faults{Delay: simnet.Dist{Base: time.Millisecond}}
		pair(t, 3, f, func(n *simnet.Network, srv, cli *rfc.Endpoint) {
			if _, err := echo(cli, srv.Addr(), 0, time.Second); err != nil {
				t.Fatal(err)
			}
			n.Pause(srv.Addr())
			if _, err := echo(cli, srv.Addr(), 1, 100*time.Millisecond); err != wire.ETIMEDOUT {
				t.Fatalf("echo to a paused node = %v, want ETIMEDOUT", err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := echo(cli, srv.Addr(), 2, time.Second)
				done <- err
			}()
			time.Sleep(200 * time.Millisecond)
			n.Resume(srv.Addr())
			if err := <-done; err != nil {
				t.Fatalf("echo across a resume = %v", err)
			}
			inc := n.Attach(netip.MustParseAddrPort("10.0.0.3:7000")).FirstIncarnation()
			n.Crash(srv.Addr())
			if _, err := echo(cli, srv.Addr(), 3, 100*time.Millisecond); err != wire.ETIMEDOUT {
				t.Fatalf("echo to a crashed node = %v, want ETIMEDOUT", err)
			}
			if again := n.Attach(netip.MustParseAddrPort("10.0.0.3:7000")).FirstIncarnation(); again == inc {
				t.Errorf("restart kept incarnation %d", inc)
			}
		})
	})
}

// TestResumeReadsHeldOneAtATime: a resumed node reads the datagrams it
// held one every ResumeGap, in the order they came, and its held sends
// go out one every ResumeGap too: no two at one instant, where the order
// of what each one causes would be the scheduler's.
func TestResumeReadsHeldOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := simnet.New(1, simnet.Faults{}, nil)
		defer n.Close()
		a := n.Attach(netip.MustParseAddrPort("10.0.0.1:7000"))
		b := n.Attach(netip.MustParseAddrPort("10.0.0.2:7000"))
		defer a.Close()
		defer b.Close()
		type got struct {
			at time.Time
			v  byte
		}
		// read reads k datagrams at c and returns them with when they came.
		read := func(c *simnet.Conn, k int) chan []got {
			out := make(chan []got, 1)
			go func() {
				var gs []got
				buf := make([]byte, 16)
				for len(gs) < k {
					if _, _, err := c.Recv(buf); err != nil {
						break
					}
					gs = append(gs, got{time.Now(), buf[0]})
				}
				out <- gs
			}()
			return out
		}
		check := func(who string, gs []got, from time.Time) {
			t.Helper()
			if len(gs) != 3 {
				t.Fatalf("%s read %d datagrams, want 3", who, len(gs))
			}
			for i, g := range gs {
				if g.v != byte(i) || !g.at.Equal(from.Add(time.Duration(i+1)*simnet.ResumeGap)) {
					t.Fatalf("%s: datagram %d is %d at %v after the resume, want %d at %v", who, i, g.v, g.at.Sub(from), i, time.Duration(i+1)*simnet.ResumeGap)
				}
			}
		}
		atB := read(b, 3)
		n.Pause(b.LocalAddr())
		for i := byte(0); i < 3; i++ {
			a.Send([]byte{i}, b.LocalAddr())
			b.Send([]byte{i}, a.LocalAddr())
			time.Sleep(time.Millisecond) // one instant each: datagrams of one instant come in hash order
		}
		time.Sleep(time.Second)
		atA := read(a, 3)
		resumed := time.Now()
		n.Resume(b.LocalAddr())
		check("the resumed node", <-atB, resumed)
		check("its peer", <-atA, resumed)
	})
}
