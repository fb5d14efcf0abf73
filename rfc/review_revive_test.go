package rfc

import (
	"testing"
	"testing/synctest"
	"time"

	"fastcall/wire"
)

// TestReviewReplayDoesNotRevive: a peer declared dead is revived by a
// sign of life, a fresh request from it. A copy of a request it sent
// before it was declared dead, replayed within the age bound by anyone on
// the path (the tag is the peer's own), is no sign of life: the peer stays
// dead. A request it stamps later revives it.
func TestReviewReplayDoesNotRevive(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		raw := w.rawSender(srv.Addr(), keyA, 21, 210)
		stamp := nowStamp()
		ping := func(id uint64, st uint32) []byte {
			return raw.encode(wire.Header{Flags: wire.FlagRequest, CallNo: CallPing, CallID: id,
				PeerInc: srv.Incarnation(), Budget: 5_000_000, Stamp: st}, nil)
		}
		captured := ping(1<<20, stamp)
		if e := raw.call(captured); e != wire.OK {
			t.Fatalf("ping: %v", e)
		}
		srv.MarkDead(raw.addr())
		rx := srv.Stats().Rx
		raw.send(captured) // the replay
		synctest.Wait()
		if got := srv.Stats().Rx; got != rx+1 {
			t.Fatalf("the server read %d datagrams, want %d", got, rx+1)
		}
		raw.recv(200 * time.Millisecond) // its answer, if any
		if info, _ := srv.Peer(raw.addr()); info.State != PeerDead {
			t.Fatalf("a replayed request revived a dead peer: state %v", info.State)
		}
		if e := raw.call(ping(2<<20, stamp+1000)); e != wire.OK {
			t.Fatalf("fresh ping: %v", e)
		}
		if info, _ := srv.Peer(raw.addr()); info.State != PeerAlive {
			t.Fatalf("a fresh request left the peer %v", info.State)
		}
	})
}
