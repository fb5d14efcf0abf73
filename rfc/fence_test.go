package rfc

import (
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc/internal/testenv"
	"fastcall/wire"
)

// Regression tests for at-most-once across sender incarnations and
// restarts, freshness and liveness of replies, answers from the duplicate
// cache, and the peer table's bounds (docs/PROTOCOL.md, "Callee").

// rawSender is a UDP socket that sends hand-made datagrams to one
// endpoint as a node with its own id and incarnation would.
type rawSender struct {
	t     *testing.T
	c     *net.UDPConn
	sim   *simRaw // instead of c, on a simulated network (simworld_test.go)
	codec *wire.Codec
	to    netip.AddrPort
	src   uint32
	inc   uint32
}

func newRawSender(t *testing.T, to netip.AddrPort, key []byte, src, inc uint32) *rawSender {
	return rawSenderOn(t, testenv.UDP(t), nil, to, key, src, inc)
}

// rawSenderOn is a rawSender on the socket c or, on a simulated network,
// on sim (c nil), with a codec for key.
func rawSenderOn(t *testing.T, c *net.UDPConn, sim *simRaw, to netip.AddrPort, key []byte, src, inc uint32) *rawSender {
	codec, err := wire.NewCodec(0, key)
	if err != nil {
		t.Fatal(err)
	}
	return &rawSender{t: t, c: c, sim: sim, codec: codec, to: to, src: src, inc: inc}
}

func (s *rawSender) addr() netip.AddrPort {
	if s.sim != nil {
		return s.sim.c.LocalAddr()
	}
	return s.c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// encode builds a datagram with header h (Src and Incarnation filled in
// from s when zero) and the parameters f writes.
func (s *rawSender) encode(h wire.Header, f func(*wire.Params)) []byte {
	if h.Src == 0 {
		h.Src = s.src
	}
	if h.Incarnation == 0 {
		h.Incarnation = s.inc
	}
	var p wire.Params
	p.Reset(make([]byte, 1400))
	if f != nil {
		f(&p)
	}
	b := make([]byte, 1400)
	n, e := s.codec.EncodeParams(b, &h, &p)
	if e != wire.OK {
		s.t.Fatal(e)
	}
	return b[:n]
}

// request builds a request for call callNo with call id id, naming the
// callee's incarnation peerInc.
func (s *rawSender) request(callNo uint16, id uint64, peerInc uint32, f func(*wire.Params)) []byte {
	return s.encode(wire.Header{Flags: wire.FlagRequest, CallNo: callNo, CallID: id, PeerInc: peerInc,
		Budget: 5_000_000, Stamp: nowStamp()}, f)
}

func (s *rawSender) send(b []byte) {
	if s.sim != nil {
		s.sim.send(s.t, b, s.to)
		return
	}
	if _, err := s.c.WriteToUDPAddrPort(b, s.to); err != nil {
		s.t.Fatal(err)
	}
}

// recv returns the next datagram within d, decoded, or false.
func (s *rawSender) recv(d time.Duration) (wire.Packet, int, bool) {
	var pk wire.Packet
	var b []byte
	if s.sim != nil {
		var ok bool
		if b, ok = s.sim.recv(d); !ok {
			return pk, 0, false
		}
	} else {
		b = make([]byte, 2048)
		s.c.SetReadDeadline(time.Now().Add(d))
		n, _, err := s.c.ReadFromUDPAddrPort(b)
		if err != nil {
			return pk, 0, false
		}
		b = b[:n]
	}
	n := len(b)
	if r := s.codec.Decode(&pk, b[:n]); r != wire.ReasonNone {
		s.t.Fatalf("undecodable answer: %v", r)
	}
	return pk, n, true
}

// call sends b and returns the error number of the answer (ETIMEDOUT for
// none within a second).
func (s *rawSender) call(b []byte) wire.Errno {
	s.send(b)
	pk, _, ok := s.recv(time.Second)
	if !ok {
		return wire.ETIMEDOUT
	}
	return pk.Errno
}

// callOK sends b and fails the test unless the answer is OK; the failure
// names what (a format for args) and the error number.
func (s *rawSender) callOK(b []byte, what string, args ...any) {
	s.t.Helper()
	if e := s.call(b); e != wire.OK {
		s.t.Fatalf(what+": %v", append(args, e)...)
	}
}

// waitRx polls until ep has read at least n datagrams in all.
func waitRx(t *testing.T, ep *Endpoint, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ep.Stats().Rx < n; {
		if time.Now().After(deadline) {
			t.Fatalf("endpoint read %d datagrams, want %d", ep.Stats().Rx, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAtMostOnceAcrossIncarnations: a request whose cache entry was
// evicted is refused when resent, even after its sender changed
// incarnation (refutation) and entries of the new incarnation were
// evicted in turn; and a sender the peer table does not track never gets
// a shared floor that another sender's evictions reset.
func TestAtMostOnceAcrossIncarnations(t *testing.T) {
	t.Run("incarnation change", func(t *testing.T) {
		srv := newTestServer(t, func(c *Config) { c.DupEntries = 16 })
		s := newRawSender(t, srv.Addr(), nil, 77, 5)
		first := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
		s.callOK(first, "first call")
		s.inc = 6 // refuted a suspicion: same process, call ids go on
		for i := uint64(2); i <= 18; i++ {
			s.callOK(s.request(callIncr, i<<20, srv.Incarnation(), nil), "call %d", i)
		}
		runs := srv.runs.Load()
		e := s.call(first) // the first request, retransmitted
		if srv.runs.Load() != runs || e != wire.ESTALE {
			t.Fatalf("resent request of the earlier incarnation: answer %v, runs %d -> %d", e, runs, srv.runs.Load())
		}
	})
	t.Run("untracked senders", func(t *testing.T) {
		srv := newTestServer(t, func(c *Config) { c.DupEntries = 16; c.MaxPeers = 1 })
		first := newRawSender(t, srv.Addr(), nil, 70, 3)
		first.callOK(first.request(CallPing, 1<<20, 0, nil), "ping")
		a := newRawSender(t, srv.Addr(), nil, 71, 5)
		b := newRawSender(t, srv.Addr(), nil, 72, 9)
		req := a.request(callIncr, 1<<20, srv.Incarnation(), nil)
		a.call(req)
		for i := uint64(1); i <= 17; i++ {
			b.call(b.request(callIncr, i<<20, srv.Incarnation(), nil))
		}
		before := srv.runs.Load()
		a.call(req)
		if srv.runs.Load() > before {
			t.Fatalf("a request of an untracked sender ran again (runs %d -> %d)", before, srv.runs.Load())
		}
	})
}

// TestRestartFirstContact: a non-idempotent request that names no
// incarnation of the callee (a first call) is not run, so a restarted
// callee never runs a retransmission of a call its earlier process ran;
// an Endpoint's first call still goes through, once.
func TestRestartFirstContact(t *testing.T) {
	srv := newTestServer(t, nil)
	addr := srv.Addr()
	s := newRawSender(t, addr, nil, 77, 5)
	req := s.request(callIncr, 1<<20, 0, nil)
	s.call(req)
	ran := srv.runs.Load()
	srv.Close()
	srv2 := newTestServer(t, func(c *Config) { c.Addr = addr.String() })
	s.call(req) // its retransmission, to the restarted callee
	if ran+srv2.runs.Load() > 1 {
		t.Fatalf("a first-contact request ran %d times across a restart", ran+srv2.runs.Load())
	}
	cli := newTestEndpoint(t, nil)
	var rep Reply
	if err := cli.Call(ctxTimeout(t, 2*time.Second), addr, callIncr, nil, &rep); err != nil {
		t.Fatalf("first call of an endpoint: %v", err)
	}
	if srv2.runs.Load() != 1 || rep.Param(0).Uint64() != 1 {
		t.Fatalf("first call ran %d times", srv2.runs.Load())
	}
}

// TestReplyNotSignOfLife: in keyed mode, neither an old authenticated
// reply nor a fresh one that matches no call revives a dead peer.
func TestReplyNotSignOfLife(t *testing.T) {
	for _, tc := range []struct {
		name string
		age  uint32 // ms before now
	}{{"replayed", 2500}, {"unmatched", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			cli := newTestEndpoint(t, func(c *Config) { c.Key = keyA; c.MaxAge = time.Second })
			dead := newRawSender(t, cli.Addr(), keyA, 9, 4)
			cli.MarkDead(dead.addr())
			before := cli.Stats().Rx
			dead.send(dead.encode(wire.Header{Flags: wire.FlagReply, CallNo: CallPing, CallID: 7<<20 | 1,
				Stamp: nowStamp() - tc.age}, nil))
			waitRx(t, cli, before+1)
			if info, _ := cli.Peer(dead.addr()); info.State != PeerDead {
				t.Fatalf("peer %v after a %s reply", info.State, tc.name)
			}
			err := cli.Call(ctxTimeout(t, 2*time.Second), dead.addr(), CallPing, nil, nil)
			if wire.AsErrno(err) != wire.ENODEAD {
				t.Fatalf("call to the dead peer: %v", err)
			}
		})
	}
}

// TestDupReplyOnlyToCopies: the duplicate cache answers only a copy of
// the request it holds the reply of; a smaller datagram with the same
// call id draws nothing.
func TestDupReplyOnlyToCopies(t *testing.T) {
	const callFat = wire.CallUserBase + 51
	srv := newTestEndpoint(t, nil)
	err := srv.Register(callFat, "fat", wire.Schema{wire.TypeBytes}, 0, func(r *Request, rep *wire.Params) wire.Errno {
		rep.Bytes(make([]byte, 2*len(r.Param(0).Bytes())))
		return wire.OK
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newRawSender(t, srv.Addr(), nil, 77, 5)
	big := s.request(callFat, 1<<20, srv.Incarnation(), func(p *wire.Params) { p.Bytes(make([]byte, 600)) })
	s.send(big)
	_, n, ok := s.recv(time.Second)
	if !ok || n < 1200 {
		t.Fatalf("reply to the large request: %d bytes", n)
	}
	small := s.request(callFat, 1<<20, srv.Incarnation(), func(p *wire.Params) { p.Bytes(nil) })
	s.send(small)
	if _, n, ok := s.recv(300 * time.Millisecond); ok && n > AmplifyFactor*len(small) {
		t.Fatalf("a %d-byte datagram drew a %d-byte cached reply", len(small), n)
	}
	s.send(big) // a true copy is still answered from the cache
	if _, n2, ok := s.recv(time.Second); !ok || n2 != n {
		t.Fatalf("copy of the request: %d bytes, want %d", n2, n)
	}
}

// TestPeerTableSpoofedReplies: reply-shaped datagrams from many sources
// do not fill the peer table, and a peer this endpoint calls is tracked,
// so that once it is declared dead its calls fail at once.
func TestPeerTableSpoofedReplies(t *testing.T) {
	const max = 8
	cli := newTestEndpoint(t, func(c *Config) { c.MaxPeers = max })
	before := cli.Stats().Rx
	for i := 0; i < 3*max; i++ {
		s := newRawSender(t, cli.Addr(), nil, uint32(100+i), 1)
		s.send(s.encode(wire.Header{Flags: wire.FlagReply, CallNo: CallPing, CallID: uint64(i+1) << 20, Stamp: nowStamp() - 60_000}, nil))
	}
	waitRx(t, cli, before+3*max)
	target := newRawSender(t, cli.Addr(), nil, 5, 1) // a node that never answers
	cli.MarkDead(target.addr())
	err := cli.Call(ctxTimeout(t, 2*time.Second), target.addr(), CallPing, nil, nil)
	if wire.AsErrno(err) != wire.ENODEAD {
		t.Fatalf("call to a peer declared dead after the table filled: %v", err)
	}
	if n := cli.Stats().Peers; n > 1 {
		t.Fatalf("%d peers tracked after spoofed replies", n)
	}
}

// TestDupFloorRecords: each sender instance of an address keeps its own
// floor; when more instances need one than there are records, the record
// taken over leaves its floor in strict until its hold passes.
func TestDupFloorRecords(t *testing.T) {
	p := &peerState{}
	const now, hold = 10, 100
	for inc := uint32(1); inc <= peerFloors; inc++ {
		p.raiseFloor(1, inc, uint64(inc)<<20, hold+int64(inc), now)
	}
	for inc := uint32(1); inc <= peerFloors; inc++ {
		if !p.belowFloor(1, inc, uint64(inc)<<20, now) || p.belowFloor(1, inc, uint64(inc)<<20+1, now) {
			t.Fatalf("instance %d: floor is not its own", inc)
		}
	}
	if p.belowFloor(2, 1, 1, now) {
		t.Fatal("another node id shares a floor")
	}
	// One more instance takes over the record held the shortest (inc 1).
	p.raiseFloor(1, 99, 50<<20, hold, now)
	if !p.belowFloor(1, 1, 1<<20, now) {
		t.Fatal("instance whose record was taken over: a forgotten call may run again")
	}
	if !p.belowFloor(1, 99, 50<<20, now) || p.belowFloor(1, 99, 50<<20+1, now) {
		t.Fatal("new instance's floor")
	}
	if p.belowFloor(1, 1, 1<<20, hold+2) || !p.floorsHeld(hold+2) || p.floorsHeld(hold+peerFloors+1) {
		t.Fatal("holds")
	}
}

// callThenEvict has s make the call req on srv, then o as many calls as
// srv's duplicate cache holds: they push s's entry out of the cache.
func callThenEvict(t *testing.T, srv *testServer, s, o *rawSender, req []byte) {
	t.Helper()
	s.callOK(req, "call")
	for i := uint64(1); i <= uint64(srv.cfg.DupEntries); i++ {
		o.callOK(o.request(callIncr, i<<20, srv.Incarnation(), nil), "call %d", i)
	}
}

// TestPeerSweepKeepsFloors: an idle peer leaves the table only once no
// copy of a request it sent can still arrive; until then a resent request
// that left the cache is refused.
func TestPeerSweepKeepsFloors(t *testing.T) {
	srv := newTestServer(t, func(c *Config) { c.DupEntries = 16 })
	s := newRawSender(t, srv.Addr(), nil, 77, 5)
	o := newRawSender(t, srv.Addr(), nil, 78, 6)
	req := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
	callThenEvict(t, srv, s, o, req)
	now := srv.Now()
	srv.sweepPeers(now + int64(srv.cfg.DupAge) + int64(time.Second))
	if _, ok := srv.Peer(s.addr()); !ok {
		t.Fatal("peer swept while its floor is held")
	}
	runs := srv.runs.Load()
	if e := s.call(req); e != wire.ESTALE || srv.runs.Load() != runs {
		t.Fatalf("resent request: %v, runs %d -> %d", e, runs, srv.runs.Load())
	}
	// Past the caller's deadline, the longest RTO and twice the age bound
	// a copy's stamp can no longer pass: the peer goes.
	late := now + int64(5*time.Second+srv.cfg.MaxRTO+2*srv.cfg.MaxAge+srv.cfg.DupAge+time.Second)
	srv.sweepPeers(late)
	if _, ok := srv.Peer(s.addr()); ok {
		t.Fatal("idle peer not swept")
	}
	if _, ok := srv.Peer(o.addr()); !ok {
		t.Fatal("peer with entries in the cache swept")
	}
}

// TestPeerTableBound: senders learnt from requests fill the table only
// up to MaxPeers; past it a non-idempotent request is refused EBUSY (no
// floor could keep it at most once) until idle peers are swept.
func TestPeerTableBound(t *testing.T) {
	srv := newTestServer(t, func(c *Config) { c.MaxPeers = 2 })
	for i := 0; i < 2; i++ {
		s := newRawSender(t, srv.Addr(), nil, uint32(10+i), 1)
		s.callOK(s.request(CallPing, 1<<20, 0, nil), "ping")
	}
	late := newRawSender(t, srv.Addr(), nil, 20, 1)
	req := late.request(callIncr, 1<<20, srv.Incarnation(), nil)
	if e := late.call(req); e != wire.EBUSY || srv.runs.Load() != 0 {
		t.Fatalf("non-idempotent request past MaxPeers: %v, runs %d", e, srv.runs.Load())
	}
	late.callOK(late.request(CallPing, 2<<20, 0, nil), "ping past MaxPeers")
	srv.sweepPeers(srv.Now() + int64(srv.cfg.DupAge) + int64(time.Second))
	if e := late.call(late.request(callIncr, 3<<20, srv.Incarnation(), nil)); e != wire.OK || srv.runs.Load() != 1 {
		t.Fatalf("after the sweep: %v, runs %d", e, srv.runs.Load())
	}
	if n := srv.Stats().Peers; n != 1 {
		t.Fatalf("%d peers tracked", n)
	}
}

// TestHandlerStaleFirstCall: an ESTALE that a handler returns reaches the
// caller of a first call as it is; only the engine's own refusal of a
// request naming no incarnation makes the caller resend.
func TestHandlerStaleFirstCall(t *testing.T) {
	const callStale, callStaleIdem = wire.CallUserBase + 52, wire.CallUserBase + 53
	srv := newTestEndpoint(t, nil)
	var runs [2]atomic.Int32
	for i, flags := range []CallFlags{0, Idempotent} {
		err := srv.Register([]uint16{callStale, callStaleIdem}[i], "stale", nil, flags, func(*Request, *wire.Params) wire.Errno {
			runs[i].Add(1)
			return wire.ESTALE
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, no := range []uint16{callStale, callStaleIdem} {
		cli := newTestEndpoint(t, nil) // a first call each
		err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), no, nil, nil)
		if wire.AsErrno(err) != wire.ESTALE || runs[i].Load() != 1 {
			t.Fatalf("call %d: %v, handler ran %d times", no, err, runs[i].Load())
		}
	}
}

// TestCachedReplyRestamped: a reply resent from the duplicate cache
// carries a fresh stamp, so that a caller whose call outlives the age
// bound still accepts it. In virtual time: the reply's stamp ages past
// the bound exactly, with no real wait.
func TestCachedReplyRestamped(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		const maxAge = 200 * time.Millisecond
		srv := w.server(func(c *Config) { c.MaxAge = maxAge })
		s := w.rawSender(srv.Addr(), nil, 77, 5)
		req := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
		s.send(req)
		first, _, ok := s.recv(time.Second)
		if !ok || first.Errno != wire.OK {
			t.Fatalf("first reply: %v %v", ok, first.Errno)
		}
		time.Sleep(2 * maxAge) // the reply's stamp ages past the bound
		stamp := nowStamp()
		s.codec.Restamp(req, 5_000_000, stamp, true)
		s.send(req)
		again, _, ok := s.recv(time.Second)
		if !ok || again.Errno != wire.OK || srv.runs.Load() != 1 {
			t.Fatalf("retransmission: %v %v, runs %d", ok, again.Errno, srv.runs.Load())
		}
		if again.Stamp != stamp {
			t.Fatalf("cached reply stamped %d ms before the retransmission", int32(stamp-again.Stamp))
		}
	})
}

// TestWorkerReplyStampedWhenSent: a worker's reply carries the clock of
// when its handler returned, not of when the worker took the request, so
// that a handler running longer than the age bound does not send a reply
// its caller drops as too old: an idempotent call then failed ETIMEDOUT
// with its handler run again for every retransmission. In virtual time:
// the handler outlives the bound exactly.
func TestWorkerReplyStampedWhenSent(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		const maxAge = 200 * time.Millisecond
		age := func(c *Config) { c.MaxAge = maxAge }
		srv := w.server(age)
		const callSlow = wire.CallUserBase + 60
		var runs atomic.Int32
		err := srv.Register(callSlow, "slow", nil, Idempotent, func(r *Request, rep *wire.Params) wire.Errno {
			runs.Add(1)
			time.Sleep(2 * maxAge)
			return wire.OK
		})
		if err != nil {
			t.Fatal(err)
		}
		cli := w.endpoint(age)
		err = cli.Call(ctxTimeout(t, 3*time.Second), srv.Addr(), callSlow, nil, nil)
		if err != nil {
			t.Fatalf("idempotent call slower than the age bound: %v, handler ran %d times", err, runs.Load())
		}
		s := w.rawSender(srv.Addr(), nil, 77, 5)
		s.send(s.request(callSleep, 1<<20, srv.Incarnation(), func(p *wire.Params) { p.Int64(int64(2 * maxAge / time.Millisecond)) }))
		rep, _, ok := s.recv(time.Second)
		if !ok || rep.Errno != wire.OK {
			t.Fatalf("reply: %v %v", ok, rep.Errno)
		}
		if d := int32(nowStamp() - rep.Stamp); d != 0 {
			t.Fatalf("worker's reply stamped %d ms before it was sent", d)
		}
	})
}

// TestUnusedIncarnationRefused: a non-idempotent request naming an
// incarnation between this process's first and its current one, which it
// never had (SetIncarnation jumped over it), is refused with ESTALE.
func TestUnusedIncarnationRefused(t *testing.T) {
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

// TestRestartRefutationNoRerun: process P1 runs a non-idempotent
// call naming its incarnation I1 and its reply is lost; P1 dies and P2
// starts on the same address with a random first incarnation below I1;
// the heartbeat tells P2 its node is suspected at I1 and P2 refutes by
// taking I1+1 (node/heartbeat selfNewsLocked). The caller's retransmission
// of the call, still naming I1, must be refused, not run a second time.
func TestRestartRefutationNoRerun(t *testing.T) {
	p1 := newTestServer(t, nil)
	addr := p1.Addr()
	// P1's incarnation in the top quarter of the range (raised, as a
	// refutation would), so that most of P2's random draws fall below
	// it: a draw at random from the whole range missed in 64 tries once
	// in 65 runs.
	if p1.Incarnation() < 3<<30 {
		p1.SetIncarnation(3<<30 + p1.Incarnation()%(1<<29))
	}
	i1 := p1.Incarnation()
	if i1 == 1<<32-1 {
		t.Skip("first incarnation at the end of the range")
	}
	raw := newRawSender(t, addr, nil, 9, 90)
	req := raw.request(callIncr, 5<<20, i1, nil)
	raw.callOK(req, "first run on P1")
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

// TestSweepKeepsPeerJustTaken: a call takes its peer entry
// (peers.get) before it parks, and the sweep finds the calls parked on a
// peer by scanning the pending slots first. A sweep that runs in between
// found no call on an idle entry and removed it, so the call parked on an
// entry no longer in the table: MarkDead of the address (a new entry)
// then failed nothing, and what the reply taught was lost. An entry just
// taken is not idle.
func TestSweepKeepsPeerJustTaken(t *testing.T) {
	cli := newTestEndpoint(t, nil)
	dst := netip.MustParseAddrPort("127.0.0.1:9")
	old := cli.Now() - 2*int64(cli.cfg.DupAge)
	p := cli.peers.get(dst)
	cli.peers.mu.Lock()
	p.lastHeard.Store(old)
	p.created = old
	p.taken.Store(old)
	cli.peers.mu.Unlock()
	// A call to dst takes the entry; a sweep runs before it parks. (The
	// timer goroutine's own sweep may remove the aged entry first: then
	// get makes another, and the test says nothing.)
	if got := cli.peers.get(dst); got != p {
		t.Skip("the timer goroutine swept the aged entry first")
	}
	cli.sweepPeers(cli.Now())
	if cli.peers.lookup(dst) != p {
		t.Fatal("the sweep removed the entry a call had just taken")
	}
}

// fillPeers makes n entries in ep's peer table, made at engine time now
// and idle from then on, as senders learnt from requests would (forged
// sources in checksum mode can fill the table so).
func fillPeers(ep *Endpoint, n int, now int64) {
	t := &ep.peers
	t.mu.Lock()
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		t.makeLocked(netip.AddrPortFrom(a, 7000), now)
	}
	t.mu.Unlock()
}

// TestSweepLetsReaderIn: the sweep of a full table of idle peers does not
// hold the table's lock for the whole walk: a reader waiting for the read
// lock (as the reader goroutine does for every datagram) gets it while the
// sweep is part done, so it never waits for more than a bounded part of
// the walk. Counted, not timed: the number of peers removed when the
// waiting reader got in. A reader blocked on the read lock while the sweep
// holds the write lock is let in when the sweep releases it, before the
// sweep takes it again.
func TestSweepLetsReaderIn(t *testing.T) {
	ep := newTestEndpoint(t, func(c *Config) { c.DupAge = time.Hour })
	const n = 1 << 16
	now := ep.Now()
	fillPeers(ep, n, now)
	tb := &ep.peers
	swept0 := ep.stats.peersSwept.Load()
	// Every peer's own lock is held, so the sweep stops at the first
	// peer it judges, with the table's locks held, until they are let go.
	ps := tb.all()
	for _, p := range ps {
		p.mu.Lock()
	}
	done := make(chan struct{})
	go func() {
		ep.sweepPeers(now + int64(ep.cfg.DupAge) + int64(time.Second))
		close(done)
	}()
	for tb.mu.TryRLock() {
		tb.mu.RUnlock()
		runtime.Gosched()
	}
	seen := make(chan uint64, 1)
	go func() {
		var part uint64
		for {
			tb.mu.RLock()
			v := ep.stats.peersSwept.Load() - swept0
			tb.mu.RUnlock()
			if v > 0 && v < n && part == 0 {
				part = v
			}
			select {
			case <-done:
				seen <- part
				return
			default:
			}
			runtime.Gosched()
		}
	}()
	for i := 0; i < 100; i++ {
		runtime.Gosched()
	}
	for _, p := range ps {
		p.mu.Unlock()
	}
	<-done
	part := <-seen
	if got := ep.stats.peersSwept.Load() - swept0; got != n {
		t.Fatalf("%d of %d idle peers swept", got, n)
	}
	if part == 0 {
		t.Fatalf("a reader waiting for the table's lock got it only once the sweep of %d peers was over", n)
	}
	t.Logf("a reader got the table's lock with %d of %d peers swept", part, n)
}

// BenchmarkSweepPeers sweeps a full table (the default MaxPeers) of peers
// heard recently (kept) or idle for DupAge (removed, the table refilled
// between sweeps). A goroutine takes the table's read lock and the
// duplicate cache's lock in a loop meanwhile, as the reader goroutine
// does: the longest of its waits during one sweep tells how long that
// sweep held them at once. It reports the median over the sweeps of that
// longest wait (wait-ns), and the longest of all (max-wait-ns, which also
// counts the scheduling delays of a loaded machine).
func BenchmarkSweepPeers(b *testing.B) {
	for _, idle := range []bool{false, true} {
		name := "kept"
		if idle {
			name = "idle"
		}
		b.Run(name, func(b *testing.B) {
			ep := newTestEndpoint(b, func(c *Config) { c.DupAge = time.Hour })
			n := ep.cfg.MaxPeers
			now := ep.Now()
			fillPeers(ep, n, now)
			at := now
			if idle {
				at += int64(ep.cfg.DupAge) + int64(time.Second)
			}
			// sweep is the number of the sweep running, 0 between
			// sweeps: a wait that began during a sweep counts for it.
			// After each sweep the loop waits for the goroutine's wait
			// under way to end, before the table is refilled (which
			// holds its lock too) or the next sweep begins.
			var sweep, rounds atomic.Int64
			var stop atomic.Bool
			worst := make([]time.Duration, b.N+1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for !stop.Load() {
					s := sweep.Load()
					t0 := time.Now()
					ep.peers.mu.RLock()
					ep.peers.mu.RUnlock()
					ep.dup.mu.Lock()
					ep.dup.mu.Unlock()
					if d := time.Since(t0); s != 0 {
						worst[s] = max(worst[s], d)
					}
					rounds.Add(1)
					runtime.Gosched()
				}
			}()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if idle && i > 0 {
					b.StopTimer()
					fillPeers(ep, n, now)
					b.StartTimer()
				}
				sweep.Store(int64(i + 1))
				ep.sweepPeers(at)
				sweep.Store(0)
				b.StopTimer()
				for r := rounds.Load(); rounds.Load() < r+2; {
					runtime.Gosched()
				}
				b.StartTimer()
			}
			b.StopTimer()
			stop.Store(true)
			<-done
			w := worst[1:]
			slices.Sort(w)
			b.ReportMetric(float64(w[len(w)/2]), "wait-ns")
			b.ReportMetric(float64(w[len(w)-1]), "max-wait-ns")
		})
	}
}
