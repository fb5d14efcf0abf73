package simnet_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc/simnet"
)

// TestDecide: Decide draws each fault at its rate, the same generator
// state gives the same fate, and a copy's bytes differ from the input
// exactly where the fate corrupts them.
func TestDecide(t *testing.T) {
	f := simnet.Faults{Loss: 0.2, Dup: 0.1, Corrupt: 0.3, Reorder: 0.25, ReorderBy: time.Millisecond,
		Delay: simnet.Dist{Base: time.Millisecond, Jitter: time.Millisecond}}
	const n = 20000
	r := simnet.NewRand(9)
	var lost, dup, corrupt, reorder, copies int
	in := []byte("datagram")
	for i := 0; i < n; i++ {
		fa := f.Decide(r, len(in))
		if fa.Lost {
			lost++
			continue
		}
		if fa.N == 2 {
			dup++
		}
		for _, c := range fa.Copies[:fa.N] {
			copies++
			b := c.Bytes(in)
			diff := 0
			for j := range b {
				if b[j] != in[j] {
					diff++
				}
			}
			if c.Corrupt {
				corrupt++
				if diff != 1 || b[c.At] != in[c.At]^c.Xor {
					t.Fatalf("corrupt copy %+v: %q from %q", c, b, in)
				}
			} else if diff != 0 {
				t.Fatalf("clean copy %+v changed: %q", c, b)
			}
			if c.Reordered {
				reorder++
			}
			if c.Delay < time.Millisecond || c.Delay >= 3*time.Millisecond || !c.Reordered && c.Delay >= 2*time.Millisecond {
				t.Fatalf("copy %+v: delay out of its distribution", c)
			}
		}
	}
	near := func(name string, got, of int, p float64) {
		if g := float64(got) / float64(of); g < p*0.9 || g > p*1.1 {
			t.Errorf("%s: %d of %d (%.3f), want about %.2f", name, got, of, g, p)
		}
	}
	near("loss", lost, n, f.Loss)
	near("dup", dup, n-lost, f.Dup)
	near("corrupt", corrupt, copies, f.Corrupt)
	near("reorder", reorder, copies, f.Reorder)
	a, b := simnet.NewRand(5), simnet.NewRand(5)
	for i := 0; i < 100; i++ {
		if fa, fb := f.Decide(a, 64), f.Decide(b, 64); fa != fb {
			t.Fatalf("draw %d: %+v and %+v from one state", i, fa, fb)
		}
	}
}

// loopback returns a UDP socket on a loopback port, closed when the test
// ends.
func loopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv reads one datagram from c within wait (a generous bound); false
// on none.
func recv(c *net.UDPConn, wait time.Duration) (string, netip.AddrPort, bool) {
	buf := make([]byte, 256)
	c.SetReadDeadline(time.Now().Add(wait))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", netip.AddrPort{}, false
	}
	return string(buf[:n]), from, true
}

// TestRelayFaults: the real-socket relay acts on the model's fates: a
// clean relay forwards each way, Dup 1 delivers every datagram twice,
// Loss 1 and a Cut deliver nothing, and the counters say so.
func TestRelayFaults(t *testing.T) {
	srv, cli := loopback(t), loopback(t)
	srvAddr := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, tc := range []struct {
		name   string
		f      simnet.Faults
		cut    bool
		copies int
	}{
		{"clean", simnet.Faults{}, false, 1},
		{"dup", simnet.Faults{Dup: 1}, false, 2},
		{"loss", simnet.Faults{Loss: 1}, false, 0},
		{"cut", simnet.Faults{}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := simnet.NewRelay(srvAddr, simnet.RelayConfig{Faults: tc.f, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tc.cut {
				r.Cut()
			}
			if _, err := cli.WriteToUDPAddrPort([]byte("ping"), r.Addr()); err != nil {
				t.Fatal(err)
			}
			var up netip.AddrPort
			for i := 0; i < tc.copies; i++ {
				s, from, ok := recv(srv, 10*time.Second)
				if !ok || s != "ping" {
					t.Fatalf("copy %d at the server: %q, %v", i, s, ok)
				}
				up = from
			}
			if tc.copies == 0 {
				// Nothing may arrive: a short wait cannot prove it,
				// the counters do.
				for end := time.Now().Add(10 * time.Second); r.C.Dropped.Load() == 0 && time.Now().Before(end); {
					time.Sleep(time.Millisecond)
				}
				if r.C.Dropped.Load() != 1 || r.C.Forwarded.Load() != 0 {
					t.Fatalf("dropped %d forwarded %d, want 1 and 0", r.C.Dropped.Load(), r.C.Forwarded.Load())
				}
				return
			}
			if _, err := srv.WriteToUDPAddrPort([]byte("pong"), up); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.copies; i++ {
				if s, _, ok := recv(cli, 10*time.Second); !ok || s != "pong" {
					t.Fatalf("copy %d at the client: %q, %v", i, s, ok)
				}
			}
			if got := r.C.Forwarded.Load(); got != uint64(2*tc.copies) {
				t.Fatalf("forwarded %d, want %d", got, 2*tc.copies)
			}
		})
	}
}

// TestRelayCutReplies: under CutReplies a request still reaches the
// server and its reply is dropped; after Heal the reply is forwarded.
func TestRelayCutReplies(t *testing.T) {
	srv, cli := loopback(t), loopback(t)
	r, err := simnet.NewRelay(srv.LocalAddr().(*net.UDPAddr).AddrPort(), simnet.RelayConfig{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.CutReplies()
	// exchange sends a ping through the relay, answers it at the server
	// and waits until the relay has forwarded or dropped the answer.
	exchange := func() {
		t.Helper()
		if _, err := cli.WriteToUDPAddrPort([]byte("ping"), r.Addr()); err != nil {
			t.Fatal(err)
		}
		s, up, ok := recv(srv, 10*time.Second)
		if !ok || s != "ping" {
			t.Fatalf("the request at the server: %q, %v", s, ok)
		}
		handled := r.C.Forwarded.Load() + r.C.Dropped.Load()
		if _, err := srv.WriteToUDPAddrPort([]byte("pong"), up); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(10 * time.Second); r.C.Forwarded.Load()+r.C.Dropped.Load() == handled && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
	}
	exchange()
	if r.C.Forwarded.Load() != 1 || r.C.Dropped.Load() != 1 {
		t.Fatalf("cut replies: forwarded %d dropped %d, want the request forwarded and the reply dropped",
			r.C.Forwarded.Load(), r.C.Dropped.Load())
	}
	r.Heal()
	exchange()
	if s, _, ok := recv(cli, 10*time.Second); !ok || s != "pong" {
		t.Fatalf("healed: the reply at the client: %q, %v", s, ok)
	}
	if r.C.Forwarded.Load() != 3 || r.C.Dropped.Load() != 1 {
		t.Fatalf("healed: forwarded %d dropped %d, want 3 and 1", r.C.Forwarded.Load(), r.C.Dropped.Load())
	}
}
