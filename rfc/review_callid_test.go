package rfc

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"fastcall/wire"
)

// TestReviewRestartedCallerIgnoresOldReply: replies name the call they
// answer only by call id (and the callee's address). A caller restarted
// on the same address (a daemon's fixed port) must not take a reply to a
// call of its earlier process (a late copy, or one replayed within the
// age bound) for the reply to its own call: its call ids must not repeat
// the earlier process's.
func TestReviewRestartedCallerIgnoresOldReply(t *testing.T) {
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
	old, ok := callee.reviewRecv(2 * time.Second)
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
	cur, ok := callee.reviewRecv(2 * time.Second)
	if !ok {
		t.Fatal("no request from the second process")
	}
	reply := func(id uint64, s string) []byte {
		return callee.encode(wire.Header{Flags: wire.FlagReply, CallNo: callEchoW, Dst: 5, CallID: id,
			Stamp: nowStamp()}, func(p *wire.Params) { p.Bytes([]byte(s)) })
	}
	callee.reviewSendTo(reply(old.CallID, "answer to the earlier process"), addr)
	callee.reviewSendTo(reply(cur.CallID, "answer to this call"), addr)
	if err := pd2.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := string(pd2.Reply().Param(0).Bytes()); got != "answer to this call" {
		t.Fatalf("call ids %#x (earlier) and %#x (now): the call took %q", old.CallID, cur.CallID, got)
	}
}

// reviewRecv returns the next datagram within d, decoded.
func (s *rawSender) reviewRecv(d time.Duration) (wire.Packet, bool) {
	pk, _, ok := s.recv(d)
	return pk, ok
}

// reviewSendTo sends b to addr.
func (s *rawSender) reviewSendTo(b []byte, addr netip.AddrPort) {
	if _, err := s.c.WriteToUDPAddrPort(b, addr); err != nil {
		s.t.Fatal(err)
	}
}
