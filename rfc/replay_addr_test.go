package rfc

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/wire"
)

// TestReplayFromOtherAddresses: a captured authenticated non-idempotent
// request, replayed within the age bound from source addresses other than
// its sender's (on loopback any 127.0.0.0/8 address can be written), is
// not run again: the tag is valid, but the call was made once. In
// virtual time on rfc/simnet.
func TestReplayFromOtherAddresses(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		req := encodeReqTo(t, keyA, callIncr, 1<<20, nowStamp(), srv.Incarnation(), nil)
		first := w.rawSender(srv.Addr(), keyA, 77, 5)
		first.send(req)
		if _, ok := first.sim.recv(time.Second); !ok {
			t.Fatal("no reply to the request")
		}
		const replays = 8
		w.replayFrom(srv.Addr(), replays, req)
		if n := srv.runs.Load(); n != 1 {
			t.Fatalf("one request replayed from %d other addresses ran %d times", replays, n)
		}
	})
}

// TestReplayFromOtherAddressBelowFloor: a captured authenticated request
// whose entry left the cache, sent again from another address, meets its
// sender's floor (ESTALE, not run) as long as a copy may pass the age
// bound; the sweep keeps the sender's home entry until then, and then
// forgets it.
func TestReplayFromOtherAddressBelowFloor(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA; c.DupEntries = 16 })
		s := w.rawSender(srv.Addr(), keyA, 77, 5)
		o := w.rawSender(srv.Addr(), keyA, 78, 6)
		req := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
		callThenEvict(t, srv, s, o, req)
		now := srv.Now()
		srv.sweepPeers(now + int64(srv.cfg.DupAge) + int64(time.Second))
		runs := srv.runs.Load()
		if e := w.rawSender(srv.Addr(), keyA, 77, 5).call(req); e != wire.ESTALE || srv.runs.Load() != runs {
			t.Fatalf("replay from another address: %v, runs %d -> %d", e, runs, srv.runs.Load())
		}
		late := now + int64(5*time.Second+srv.cfg.MaxRTO+2*srv.cfg.MaxAge+srv.cfg.DupAge+time.Second)
		srv.sweepPeers(late)
		srv.peers.mu.RLock()
		h := srv.peers.home[77]
		srv.peers.mu.RUnlock()
		if h != nil {
			t.Fatalf("home of node 77 (%v) kept after its peer was swept", h.addr)
		}
	})
}

// TestRestartAtNewAddress: a node restarted at another address with a new
// incarnation is a new sender instance: its calls run, once each, even
// with the call ids of its earlier process.
func TestRestartAtNewAddress(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		old := w.rawSender(srv.Addr(), keyA, 77, 5)
		if e := old.call(old.request(callIncr, 1<<20, srv.Incarnation(), nil)); e != wire.OK {
			t.Fatalf("call of the earlier process: %v", e)
		}
		s := w.rawSender(srv.Addr(), keyA, 77, 6)
		req := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
		for i := 0; i < 2; i++ { // the call, then its retransmission
			if e := s.call(req); e != wire.OK {
				t.Fatalf("send %d of the restarted node's call: %v", i, e)
			}
		}
		if e := s.call(s.request(callIncr, 2<<20, srv.Incarnation(), nil)); e != wire.OK {
			t.Fatalf("next call of the restarted node: %v", e)
		}
		if n := srv.runs.Load(); n != 3 {
			t.Fatalf("runs %d, want 3", n)
		}
	})
}

// TestChecksumModeKeysByAddress: without a key nothing authenticates a
// sender, and the duplicate cache keys on the source address as before:
// the same call id of the same node id from two addresses is two calls.
func TestChecksumModeKeysByAddress(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(nil)
		for i := 0; i < 2; i++ {
			s := w.rawSender(srv.Addr(), nil, 77, 5)
			if e := s.call(s.request(callIncr, 1<<20, srv.Incarnation(), nil)); e != wire.OK {
				t.Fatalf("call from address %d: %v", i, e)
			}
		}
		if n := srv.runs.Load(); n != 2 {
			t.Fatalf("runs %d, want 2", n)
		}
	})
}

// TestReplayNodeIDZeroFromOtherAddresses: a client without a node id
// (source 0, as rfcctl) is authenticated by the tag like a member, and
// the tag does not cover the source address either: a captured
// non-idempotent request of such a client, replayed within the age bound
// from other addresses, is not run again, neither while its entry is in
// the cache nor once it left it (ESTALE).
func TestReplayNodeIDZeroFromOtherAddresses(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA; c.DupEntries = 16 })
		s := w.rawSender(srv.Addr(), keyA, 0, 5)
		req := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
		if e := s.call(req); e != wire.OK {
			t.Fatalf("call: %v", e)
		}
		const replays = 8
		w.replayFrom(srv.Addr(), replays, req)
		if n := srv.runs.Load(); n != 1 {
			t.Fatalf("one request of node id 0 replayed from %d other addresses ran %d times", replays, n)
		}
		o := w.rawSender(srv.Addr(), keyA, 78, 6)
		for i := uint64(1); i <= uint64(srv.cfg.DupEntries); i++ {
			if e := o.call(o.request(callIncr, i<<20, srv.Incarnation(), nil)); e != wire.OK {
				t.Fatalf("call %d: %v", i, e)
			}
		}
		runs := srv.runs.Load()
		if e := w.rawSender(srv.Addr(), keyA, 0, 5).call(req); e != wire.ESTALE || srv.runs.Load() != runs {
			t.Fatalf("replay from another address after eviction: %v, runs %d -> %d", e, runs, srv.runs.Load())
		}
	})
}

// TestNodeIDZeroClientsApart: clients without a node id are told apart
// by their incarnations: two of them with the same call id each run
// their call, and an Endpoint with node id 0 and the key makes its
// first non-idempotent call and the ones after it, once each.
func TestNodeIDZeroClientsApart(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		for inc := uint32(5); inc <= 6; inc++ {
			s := w.rawSender(srv.Addr(), keyA, 0, inc)
			if e := s.call(s.request(callIncr, 1<<20, srv.Incarnation(), nil)); e != wire.OK {
				t.Fatalf("client of incarnation %d: %v", inc, e)
			}
		}
		cli := w.endpoint(func(c *Config) { c.Key = keyA })
		for i := 0; i < 3; i++ {
			if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), callIncr, nil, nil); err != nil {
				t.Fatalf("call %d of an endpoint with node id 0: %v", i, err)
			}
		}
		if n := srv.runs.Load(); n != 5 {
			t.Fatalf("runs %d, want 5", n)
		}
	})
}

// TestReplayFillsNoPeerTable: captured authenticated requests replayed
// within the age bound from other addresses make no peer entry for those
// addresses, so they cannot fill the table: a new sender's
// non-idempotent call afterwards still runs (with an entry made per
// replay address it was refused EBUSY, peers-full). So for a
// non-idempotent request and an idempotent one from a sender whose entry
// its first request made, and for an idempotent one from a sender whose
// entry this endpoint made before (a call or a mark).
func TestReplayFillsNoPeerTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		marked bool // the sender's entry is made by MarkAlive first
		incr   bool // a non-idempotent request is captured too
	}{{"learnt", false, true}, {"marked", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			inSim(t, func(t *testing.T, w *simWorld) {
				const max = 4
				srv := w.server(func(c *Config) { c.Key = keyA; c.MaxPeers = max })
				s := w.rawSender(srv.Addr(), keyA, 77, 5)
				if tc.marked {
					srv.MarkAlive(s.addr())
				}
				reqs := [][]byte{s.request(CallPing, 2<<20, 0, nil)}
				if tc.incr {
					reqs = append(reqs, s.request(callIncr, 1<<20, srv.Incarnation(), nil))
				}
				for _, req := range reqs {
					if e := s.call(req); e != wire.OK {
						t.Fatalf("call: %v", e)
					}
				}
				runs := srv.runs.Load()
				w.replayFrom(srv.Addr(), 2*max, reqs...)
				if n := srv.Stats().Peers; n != 1 {
					t.Errorf("%d peers tracked after replays from %d other addresses, want 1", n, 2*max)
				}
				n := w.rawSender(srv.Addr(), keyA, 90, 7)
				if e := n.call(n.request(callIncr, 1<<20, srv.Incarnation(), nil)); e != wire.OK {
					t.Fatalf("new sender's call after the replays: %v (peers-full %d)", e, srv.Stats().Drops["peers-full"])
				}
				if r := srv.runs.Load(); r != runs+1 {
					t.Fatalf("runs %d -> %d, want one more", runs, r)
				}
			})
		})
	}
}

// TestHomeMadeAgainAfterSweep: a node heard at a second address (a
// restart, with later stamps) gets an entry there while its home stays at
// the first; once the sweep removes the first, the node's next request
// makes its live entry the home, and copies of what that entry heard,
// replayed from other addresses, make no entry.
func TestHomeMadeAgainAfterSweep(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		old := w.rawSender(srv.Addr(), keyA, 77, 5)
		if e := old.call(old.request(CallPing, 1<<20, 0, nil)); e != wire.OK {
			t.Fatalf("ping of the earlier process: %v", e)
		}
		time.Sleep(srv.cfg.DupAge / 2)
		s := w.rawSender(srv.Addr(), keyA, 77, 6)
		if e := s.call(s.request(CallPing, 2<<20, 0, nil)); e != wire.OK {
			t.Fatalf("first ping at the new address: %v", e)
		}
		if _, ok := srv.Peer(s.addr()); !ok {
			t.Fatal("no entry for the node's new address")
		}
		time.Sleep(srv.cfg.DupAge/2 + time.Second)
		srv.sweepPeers(srv.Now())
		if _, ok := srv.Peer(old.addr()); ok {
			t.Fatal("the earlier address was not swept")
		}
		ping := s.request(CallPing, 3<<20, 0, nil)
		if e := s.call(ping); e != wire.OK {
			t.Fatalf("ping after the sweep: %v", e)
		}
		w.replayFrom(srv.Addr(), 4, ping)
		if n := srv.Stats().Peers; n != 1 {
			t.Fatalf("%d peers tracked after replays from 4 other addresses, want 1", n)
		}
	})
}

// replayFrom sends the captured datagrams reqs to to again from n new
// addresses, all of them from each, and waits a second of virtual time
// for them to be served.
func (w *simWorld) replayFrom(to netip.AddrPort, n int, reqs ...[]byte) {
	for i := 0; i < n; i++ {
		r := w.rawSender(to, keyA, 0, 1)
		for _, req := range reqs {
			r.send(req)
		}
	}
	time.Sleep(time.Second)
}
