package rfc

import (
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

// TestReflectedRequestDropped: a keyed request to a peer whose node id
// the sender has not learnt carries destination node id 0, so any
// endpoint of the cluster accepts it. Captured and sent back to its
// sender from the sender's own address, it ran there: an idempotent call
// meant for the peer ran on the sender. Such a request (destination 0,
// from this endpoint's address or carrying its node id, and not a call of
// its own in flight to that address) is now dropped and counted; a call
// of an endpoint to itself still runs. In virtual time on rfc/simnet,
// where the test sends on the endpoint's own Conn to play a datagram from
// its address.
func TestReflectedRequestDropped(t *testing.T) {
	const callCount = wire.CallUserBase + 60
	inSim(t, func(t *testing.T, w *simWorld) {
		conn := w.attach()
		self := conn.LocalAddr()
		ep := w.endpointOn(conn, func(c *Config) { c.Key, c.NodeID = keyA, 1 })
		var runs atomic.Int64
		if err := ep.Register(callCount, "count", nil, Idempotent, func(*Request, *wire.Params) wire.Errno {
			runs.Add(1)
			return wire.OK
		}); err != nil {
			t.Fatal(err)
		}
		// The call to the peer: its request is captured, never answered.
		peer := w.rawSender(self, keyA, 2, 1)
		go ep.Call(ctxTimeout(t, 300*time.Millisecond), peer.addr(), callCount, nil, nil)
		req, ok := peer.sim.recv(time.Second)
		if !ok {
			t.Fatal("no request sent")
		}
		var pkt wire.Packet
		if r := peer.codec.Decode(&pkt, req); r != wire.ReasonNone || pkt.Dst != 0 {
			t.Fatalf("captured request: reason %v dst %d", r, pkt.Dst)
		}
		// Reflected: from the sender's own address, and from another one.
		if err := conn.Send(req, self); err != nil {
			t.Fatal(err)
		}
		w.replayFrom(self, 1, req)
		// A call of the endpoint to itself is looped back and runs.
		if err := ep.Call(ctxTimeout(t, 2*time.Second), self, callCount, nil, nil); err != nil {
			t.Fatalf("call to itself: %v", err)
		}
		if n := runs.Load(); n != 1 {
			t.Fatalf("the call ran %d times on its sender, want 1 (the call to itself)", n)
		}
		if n := dropCount(ep, "reflected"); n != 2 {
			t.Fatalf("reflected drops %d, want 2", n)
		}
	})
}

// dropCount returns the drop counter name of ep (-1: none).
func dropCount(ep *Endpoint, name string) int64 {
	for _, d := range ep.Drops() {
		if d.Reason == name {
			return int64(d.Count)
		}
	}
	return -1
}
