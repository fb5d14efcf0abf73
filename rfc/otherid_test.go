package rfc

import (
	"testing"
	"time"

	"fastcall/wire"
)

// TestOtherNodeIDIsNoSignOfLife: a peer (node 2) has called this endpoint
// and then crashed, and is declared dead. An authenticated request with a
// fresh stamp then comes from its address naming node 3 (another member's
// datagram, captured and sent from the dead peer's address: the tag does
// not cover the address). It is served, but it is no sign of life of the
// peer: the peer stays dead, with its node id and incarnation. A node
// that really comes up at that address with id 3 is then called with
// destination 0 (not 2, which it would drop as wrong-dst), answers, and
// its reply makes the peer alive as node 3.
func TestOtherNodeIDIsNoSignOfLife(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA; c.NodeID = 1 })
		peer := w.endpoint(func(c *Config) { c.Key = keyA; c.NodeID = 2 })
		addr := peer.Addr()
		if err := peer.Call(ctxTimeout(t, time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
			t.Fatalf("ping from the peer: %v", err)
		}
		inc := peer.Incarnation()
		peer.Close()
		srv.MarkDead(addr)

		time.Sleep(100 * time.Millisecond)
		codec, _ := wire.NewCodec(0, keyA)
		h := wire.Header{Flags: wire.FlagRequest, CallNo: CallPing, Src: 3, CallID: 1 << 20, Incarnation: 9, Stamp: nowStamp()}
		dg := make([]byte, 256)
		n, _ := codec.Encode(dg, &h, nil, 0)
		forger := w.Net.Attach(addr)
		forger.Send(dg[:n], srv.Addr())
		time.Sleep(10 * time.Millisecond)
		if info, _ := srv.Peer(addr); info.State != PeerDead || info.Node != 2 || info.Incarnation != inc {
			t.Fatalf("after node 3's request from node 2's address: %+v, want dead node 2 incarnation %d", info, inc)
		}
		forger.Close()

		cfg := DefaultConfig()
		cfg.Key, cfg.NodeID = keyA, 3
		next, err := ListenTransport(cfg, w.Net.Attach(addr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { next.Close() })
		srv.MarkAlive(addr)
		if err := srv.Call(ctxTimeout(t, time.Second), addr, CallPing, nil, nil); err != nil {
			t.Fatalf("call to node 3 at the address: %v", err)
		}
		if info, _ := srv.Peer(addr); info.State != PeerAlive || info.Node != 3 {
			t.Fatalf("after node 3's reply: %+v, want alive node 3", info)
		}
	})
}
