package rfc

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc/internal/testenv"
	"fastcall/wire"
)

// TestReplyGenerationBits: a reply whose call id names the caller's slot
// but another generation (the bits above the slot) is a late reply to an
// earlier call in that slot, or a forgery: it is dropped and counted, and
// the call stays parked until the reply with its own id arrives. The
// callee here is a bare socket that answers by hand.
func TestReplyGenerationBits(t *testing.T) {
	cli := newTestEndpoint(t, nil)
	callee := testenv.UDP(t)
	p, req, from := parkCall(t, cli, callee)
	defer p.Release()
	reply := func(id uint64) {
		t.Helper()
		sendReply(t, callee, from, req.CallNo, req.Src, id)
	}
	late := func() uint64 { return cli.Stats().Drops["late-reply"] }
	gen := uint64(1) << slotBits
	forged := []uint64{req.CallID + gen, req.CallID ^ gen<<5}
	if req.CallID >= gen {
		forged = append(forged, req.CallID-gen)
	}
	for i, id := range forged {
		if id&slotMask != req.CallID&slotMask || id == req.CallID {
			t.Fatalf("forged id %#x does not share only the slot of %#x", id, req.CallID)
		}
		reply(id)
		if !waitFor(10*time.Second, func() bool { return late() == uint64(i+1) }) {
			t.Fatalf("reply %#x to call %#x: %d late replies counted, want %d", id, req.CallID, late(), i+1)
		}
		select {
		case <-p.Done():
			t.Fatalf("call %#x completed by a reply to %#x (err %v)", req.CallID, id, p.Err())
		default:
		}
	}
	reply(req.CallID)
	waitCompleted(t, p, "the call's own reply")
}

// TestDupFloorRefusesEvicted: with a duplicate cache of 16 entries, a
// 17th non-idempotent request evicts the first, and the sender's floor
// rises to the evicted call's id. A retransmission of that very call (its
// id equal to the floor) is refused with ESTALE and not run again; the
// calls still cached are answered from the cache.
func TestDupFloorRefusesEvicted(t *testing.T) {
	const entries = 16
	srv := newTestServer(t, func(c *Config) { c.DupEntries = entries })
	c := rawConn(t, srv.Endpoint)
	codec, _ := wire.NewCodec(0, nil)
	send := func(id uint64) wire.Errno {
		t.Helper()
		c.Write(encodeReqTo(t, nil, callIncr, id, nowStamp(), srv.Incarnation(), nil))
		b, ok := readReply(c, 5*time.Second)
		if !ok {
			t.Fatalf("no reply to call %#x", id)
		}
		var p wire.Packet
		if r := codec.Decode(&p, b); r != wire.ReasonNone || p.CallID != id {
			t.Fatalf("reply to %#x: %v, id %#x", id, r, p.CallID)
		}
		return p.Errno
	}
	var ids []uint64
	for i := 1; i <= entries+1; i++ {
		ids = append(ids, uint64(i)<<20)
	}
	for _, id := range ids {
		if e := send(id); e != wire.OK {
			t.Fatalf("call %#x: %v", id, e)
		}
	}
	if e := send(ids[0]); e != wire.ESTALE {
		t.Fatalf("retransmission of the evicted call: %v, want ESTALE", e)
	}
	for _, id := range ids[1:] {
		if e := send(id); e != wire.OK {
			t.Fatalf("retransmission of cached call %#x: %v", id, e)
		}
	}
	if n := srv.runs.Load(); n != uint64(len(ids)) {
		t.Fatalf("%d runs of %d calls", n, len(ids))
	}
}

// TestRestartedCallerIgnoresOldReply: replies name the call they
// answer only by call id (and the callee's address). A caller restarted
// on the same address (a daemon's fixed port) must not take a reply to a
// call of its earlier process (a late copy, or one replayed within the
// age bound) for the reply to its own call: its call ids must not repeat
// the earlier process's.
func TestRestartedCallerIgnoresOldReply(t *testing.T) {
	callee := newRawSender(t, netip.AddrPort{}, nil, 40, 400)
	dst := callee.addr()
	p1 := newTestEndpoint(t, func(c *Config) { c.NodeID = 5 })
	addr := p1.Addr()
	ctx1, cancel1 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel1()
	pd1, err := p1.Go(ctx1, dst, callEchoW, params(func(p *wire.Params) { p.Bytes([]byte("x")) }))
	if err != nil {
		t.Fatal(err)
	}
	old, _, ok := callee.recv(2 * time.Second)
	if !ok {
		t.Fatal("no request from the first process")
	}
	pd1.Release()
	p1.Close()
	p2 := newTestEndpoint(t, func(c *Config) { c.NodeID = 5; c.Addr = addr.String() })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	pd2, err := p2.Go(ctx2, dst, callEchoW, params(func(p *wire.Params) { p.Bytes([]byte("x")) }))
	if err != nil {
		t.Fatal(err)
	}
	defer pd2.Release()
	cur, _, ok := callee.recv(2 * time.Second)
	if !ok {
		t.Fatal("no request from the second process")
	}
	reply := func(id uint64, s string) []byte {
		return callee.encode(wire.Header{Flags: wire.FlagReply, CallNo: callEchoW, Dst: 5, CallID: id,
			Stamp: nowStamp()}, func(p *wire.Params) { p.Bytes([]byte(s)) })
	}
	callee.sendTo(reply(old.CallID, "answer to the earlier process"), addr)
	callee.sendTo(reply(cur.CallID, "answer to this call"), addr)
	if err := pd2.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := string(pd2.Reply().Param(0).Bytes()); got != "answer to this call" {
		t.Fatalf("call ids %#x (earlier) and %#x (now): the call took %q", old.CallID, cur.CallID, got)
	}
}

// sendTo sends b to addr.
func (s *rawSender) sendTo(b []byte, addr netip.AddrPort) {
	if _, err := s.c.WriteToUDPAddrPort(b, addr); err != nil {
		s.t.Fatal(err)
	}
}
