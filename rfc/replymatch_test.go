package rfc

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc/internal/testenv"
	"fastcall/wire"
)

// sendReply sends from c to dst a reply with call id id to a request of
// call callNo from node src.
func sendReply(t *testing.T, c *net.UDPConn, dst netip.AddrPort, callNo uint16, src uint32, id uint64) {
	t.Helper()
	codec, _ := wire.NewCodec(0, nil)
	h := wire.Header{Flags: wire.FlagReply, CallNo: callNo, Src: 9, Dst: src, CallID: id, Incarnation: 77, Stamp: nowStamp()}
	dg := make([]byte, 256)
	n, e := codec.Encode(dg, &h, nil, 0)
	if e != wire.OK {
		t.Fatal(e)
	}
	if _, err := c.WriteToUDPAddrPort(dg[:n], dst); err != nil {
		t.Fatal(err)
	}
}

// TestReplyFromOtherAddress: a reply is taken only from the address the
// call went to. One with the call's own id from another address (an
// off-path forgery in checksum mode) is dropped as late and the call
// stays parked until its callee answers.
func TestReplyFromOtherAddress(t *testing.T) {
	cli := newTestEndpoint(t, nil)
	callee, other := testenv.UDP(t), testenv.UDP(t)
	p, req, from := parkCall(t, cli, callee)
	defer p.Release()
	late := func() uint64 { return cli.Stats().Drops["late-reply"] }
	sendReply(t, other, from, req.CallNo, req.Src, req.CallID)
	if !waitFor(10*time.Second, func() bool { return late() == 1 }) {
		t.Fatalf("reply from another address: %d late replies counted, want 1", late())
	}
	select {
	case <-p.Done():
		t.Fatalf("call completed by a reply from another address (err %v)", p.Err())
	default:
	}
	sendReply(t, callee, from, req.CallNo, req.Src, req.CallID)
	waitCompleted(t, p, "the callee's reply")
}

// parkCall makes a ping call from cli to the bare socket callee, which
// does not answer, and returns the parked call, the request as callee
// read it and the address it came from.
func parkCall(t *testing.T, cli *Endpoint, callee *net.UDPConn) (*Pending, wire.Packet, netip.AddrPort) {
	t.Helper()
	dst := callee.LocalAddr().(*net.UDPAddr).AddrPort()
	p, err := cli.Go(ctxTimeout(t, 30*time.Second), dst, CallPing, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	callee.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := callee.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.Release()
		t.Fatalf("no request: %v", err)
	}
	codec, _ := wire.NewCodec(0, nil)
	var req wire.Packet
	if r := codec.Decode(&req, buf[:n]); r != wire.ReasonNone {
		p.Release()
		t.Fatalf("request: %v", r)
	}
	return p, req, from
}

// waitCompleted waits until the reply named by what has completed the
// parked call p, and fails the test unless the call succeeded.
func waitCompleted(t *testing.T, p *Pending, what string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not complete the call", what)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("call: %v", err)
	}
}

// TestReplySlotPastTable: a reply whose call id names the slot just past
// the pending table (slot bits equal to MaxPending) names no call: it is
// dropped as late, and the endpoint goes on serving.
func TestReplySlotPastTable(t *testing.T) {
	const slots = 4
	cli := newTestEndpoint(t, func(c *Config) { c.MaxPending = slots })
	c := testenv.UDP(t)
	for _, slot := range []uint64{slots, slots + 1, slotMask} {
		sendReply(t, c, cli.Addr(), CallPing, 0, 3<<slotBits|slot)
	}
	late := func() uint64 { return cli.Stats().Drops["late-reply"] }
	if !waitFor(10*time.Second, func() bool { return late() == 3 }) {
		t.Fatalf("%d late replies counted, want 3", late())
	}
	srv := newTestEndpoint(t, nil)
	if err := cli.Call(ctxTimeout(t, 10*time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
		t.Fatalf("call after the replies: %v", err)
	}
}

// TestSetIncarnationKeepsEarlier: requests may name any of the last
// incKept incarnations this process took. Raising the incarnation keeps
// the earlier ones, and raising it to the value it already has changes
// nothing (it pushes no earlier one out).
func TestSetIncarnationKeepsEarlier(t *testing.T) {
	ep := newTestEndpoint(t, nil)
	first := ep.Incarnation()
	last := first + incKept - 1
	for v := first + 1; v <= last; v++ {
		ep.SetIncarnation(v)
	}
	for i := 0; i < incKept; i++ {
		ep.SetIncarnation(last)
	}
	if ep.Incarnation() != last {
		t.Fatalf("incarnation %d, want %d", ep.Incarnation(), last)
	}
	for v := first; v <= last; v++ {
		if !ep.ownIncarnation(v) {
			t.Fatalf("incarnation %d of %d..%d is not this process's any more", v, first, last)
		}
	}
	if ep.ownIncarnation(last + 1) {
		t.Fatalf("incarnation %d, never taken, counts as this process's", last+1)
	}
}
