package rfc

import (
	"testing"

	"fastcall/wire"
)

// TestReviewUnusedIncarnationRefused: a non-idempotent request naming an
// incarnation between this process's first and its current one, which it
// never had (SetIncarnation jumped over it), is refused with ESTALE.
func TestReviewUnusedIncarnationRefused(t *testing.T) {
	s := newTestServer(t, nil)
	start := s.Incarnation()
	if start > 1<<32-4 {
		t.Skip("incarnation too close to the top to jump over one")
	}
	s.SetIncarnation(start + 2)
	raw := newRawSender(t, s.Addr(), nil, 7, 70)
	if e := raw.call(raw.request(callIncr, 1<<20, start+1, nil)); e != wire.ESTALE {
		t.Fatalf("request naming unused incarnation %d: %v, want ESTALE", start+1, e)
	}
	if n := s.runs.Load(); n != 0 {
		t.Fatalf("handler ran %d times for an incarnation the process never had", n)
	}
	for _, inc := range []uint32{start, start + 2} {
		if e := raw.call(raw.request(callIncr, uint64(inc&0xff+2)<<20, inc, nil)); e != wire.OK {
			t.Fatalf("request naming own incarnation %d: %v, want OK", inc, e)
		}
	}
}

// TestReviewRestartRefutationNoRerun: process P1 runs a non-idempotent
// call naming its incarnation I1 and its reply is lost; P1 dies and P2
// starts on the same address with a random first incarnation below I1;
// the heartbeat tells P2 its node is suspected at I1 and P2 refutes by
// taking I1+1 (node/heartbeat selfNewsLocked). The caller's retransmission
// of the call, still naming I1, must be refused, not run a second time.
func TestReviewRestartRefutationNoRerun(t *testing.T) {
	p1 := newTestServer(t, nil)
	addr := p1.Addr()
	i1 := p1.Incarnation()
	if i1 < 2 || i1 == 1<<32-1 {
		t.Skip("first incarnation at an end of the range")
	}
	raw := newRawSender(t, addr, nil, 9, 90)
	req := raw.request(callIncr, 5<<20, i1, nil)
	if e := raw.call(req); e != wire.OK {
		t.Fatalf("first run on P1: %v", e)
	}
	p1.Close()
	var p2 *testServer
	for try := 0; try < 64; try++ {
		s := newTestServer(t, func(c *Config) { c.Addr = addr.String() })
		if s.Incarnation() <= i1 {
			p2 = s
			break
		}
		s.Close()
	}
	if p2 == nil {
		t.Fatal("no P2 drew a first incarnation below P1's in 64 tries")
	}
	p2.SetIncarnation(i1 + 1) // refutes "suspect at i1"
	if e := raw.call(req); e != wire.ESTALE {
		t.Errorf("retransmission naming P1's incarnation on P2: %v, want ESTALE", e)
	}
	if n := p1.runs.Load() + p2.runs.Load(); n != 1 {
		t.Fatalf("non-idempotent call ran %d times across the restart, want 1", n)
	}
}
