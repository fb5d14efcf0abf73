package rfc

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// Tests of a sender's requests that come from an address other than its
// home (docs/PROTOCOL.md, "Callee" 4 and "Peer table"): captured requests
// replayed from other addresses, a node restarted at a new address, node
// id 0 clients, and the home's last stamp after a long silence.

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

// TestReplayFromOtherAddressUnanswered: the tag does not cover the source
// address, so an on-path attacker could send a captured authenticated
// request again, within the age bound, from a victim's address, and have
// its cached reply (up to the datagram limit, whatever the request's
// size) reflected at the victim. A copy from another address than the one
// its original came from draws no reply and is counted dup-addr; the
// sender's own retransmission from its address is still answered from the
// cache. Once the entry left the cache, a copy from anywhere is refused
// ESTALE, a bare header no larger than the request. In virtual time on
// rfc/simnet.
func TestReplayFromOtherAddressUnanswered(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv, s, req := calledOnce(w, 77, 5)
		victim := w.rawSender(srv.Addr(), keyA, 0, 1)
		victim.send(req)
		if pk, n, ok := victim.recv(time.Second); ok {
			t.Fatalf("a copy from another address drew a reply of %d bytes (%v) to that address", n, pk.Errno)
		}
		if n := dropCount(srv.Endpoint, "dup-addr"); n != 1 {
			t.Fatalf("dup-addr drops %d, want 1", n)
		}
		s.callOK(req, "retransmission from the sender's address")
		o := w.rawSender(srv.Addr(), keyA, 78, 6)
		for i := uint64(1); i <= uint64(srv.cfg.DupEntries); i++ {
			o.callOK(o.request(callIncr, i<<20, srv.Incarnation(), nil), "call %d", i)
		}
		victim.send(req)
		if pk, n, ok := victim.recv(time.Second); !ok || pk.Errno != wire.ESTALE || n > len(req) {
			t.Fatalf("a copy below the floor from another address: answered %v, %v of %d bytes (request %d), want ESTALE no larger than the request",
				ok, pk.Errno, n, len(req))
		}
		if e := s.call(req); e != wire.ESTALE {
			t.Fatalf("retransmission from the sender's address below the floor: %v, want ESTALE", e)
		}
		if n := dropCount(srv.Endpoint, "dup-addr"); n != 1 {
			t.Fatalf("dup-addr drops %d, want 1", n)
		}
		if n, want := srv.runs.Load(), uint64(1+srv.cfg.DupEntries); n != want {
			t.Fatalf("runs %d, want %d", n, want)
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
			t.Fatalf("home of node 77 (%v) kept after its peer was swept", h.p.addr)
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
		old.callOK(old.request(callIncr, 1<<20, srv.Incarnation(), nil), "call of the earlier process")
		s := w.rawSender(srv.Addr(), keyA, 77, 6)
		req := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
		for i := 0; i < 2; i++ { // the call, then its retransmission
			s.callOK(req, "send %d of the restarted node's call", i)
		}
		s.callOK(s.request(callIncr, 2<<20, srv.Incarnation(), nil), "next call of the restarted node")
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
			s.callOK(s.request(callIncr, 1<<20, srv.Incarnation(), nil), "call from address %d", i)
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
		srv, _, req := calledOnce(w, 0, 5)
		const replays = 8
		w.replayFrom(srv.Addr(), replays, req)
		if n := srv.runs.Load(); n != 1 {
			t.Fatalf("one request of node id 0 replayed from %d other addresses ran %d times", replays, n)
		}
		o := w.rawSender(srv.Addr(), keyA, 78, 6)
		for i := uint64(1); i <= uint64(srv.cfg.DupEntries); i++ {
			o.callOK(o.request(callIncr, i<<20, srv.Incarnation(), nil), "call %d", i)
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
			s.callOK(s.request(callIncr, 1<<20, srv.Incarnation(), nil), "client of incarnation %d", inc)
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
					s.callOK(req, "call")
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
		old.callOK(old.request(CallPing, 1<<20, 0, nil), "ping of the earlier process")
		time.Sleep(srv.cfg.DupAge / 2)
		s := w.rawSender(srv.Addr(), keyA, 77, 6)
		s.callOK(s.request(CallPing, 2<<20, 0, nil), "first ping at the new address")
		if _, ok := srv.Peer(s.addr()); !ok {
			t.Fatal("no entry for the node's new address")
		}
		time.Sleep(srv.cfg.DupAge/2 + time.Second)
		srv.sweepPeers(srv.Now())
		if _, ok := srv.Peer(old.addr()); ok {
			t.Fatal("the earlier address was not swept")
		}
		ping := s.request(CallPing, 3<<20, 0, nil)
		s.callOK(ping, "ping after the sweep")
		w.replayFrom(srv.Addr(), 4, ping)
		if n := srv.Stats().Peers; n != 1 {
			t.Fatalf("%d peers tracked after replays from 4 other addresses, want 1", n)
		}
	})
}

// TestHomesMadeAgainAfterOneSweep is TestHomeMadeAgainAfterSweep for
// many nodes at once, so that the sweep meets kept entries both before
// and after the homes it removes (a map's range has no set order): right
// after the sweep that removes the earlier addresses, every node's next
// request makes its live entry the home again, and replayed copies make
// no entry.
func TestHomesMadeAgainAfterOneSweep(t *testing.T) {
	const nodes = 16
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		// Off the timer's sweep instants (multiples of sweepEvery
		// from the start), so that the explicit sweep below is the
		// only one between the earlier addresses going idle and the
		// pings after it.
		time.Sleep(time.Millisecond)
		for i := range nodes {
			old := w.rawSender(srv.Addr(), keyA, uint32(100+i), 5)
			old.callOK(old.request(CallPing, 1<<20, 0, nil), "ping of node %d's earlier process", 100+i)
		}
		time.Sleep(srv.cfg.DupAge / 2)
		var fresh []*rawSender
		for i := range nodes {
			s := w.rawSender(srv.Addr(), keyA, uint32(100+i), 6)
			s.callOK(s.request(CallPing, 2<<20, 0, nil), "node %d's first ping at its new address", 100+i)
			fresh = append(fresh, s)
		}
		// The earlier addresses are idle from now on: this sweep
		// removes them.
		time.Sleep(srv.cfg.DupAge / 2)
		srv.sweepPeers(srv.Now())
		if n := srv.Stats().Peers; n != nodes {
			t.Fatalf("%d peers tracked after the sweep, want the %d new addresses", n, nodes)
		}
		var pings [][]byte // all sent before any replay: no sweep comes between
		for _, s := range fresh {
			ping := s.request(CallPing, 3<<20, 0, nil)
			s.callOK(ping, "ping after the sweep")
			pings = append(pings, ping)
		}
		for _, ping := range pings {
			w.replayFrom(srv.Addr(), 1, ping)
		}
		if n := srv.Stats().Peers; n != nodes {
			t.Fatalf("%d peers tracked after replays of each node's ping from an address of its own, want %d", n, nodes)
		}
	})
}

// TestLearnSenderHomeLongSilent: a sender's home entry that is never
// swept (declared dead: MarkDead) holds the last stamp it heard for as
// long as it stays. Once that stamp is older than twice the age bound, no
// copy of a request the home heard can pass the age bound any more, so a
// later request of the sender from another address (the node back at a
// new address, weeks on) makes its entry and is a sign of life, also
// past the half of the 32-bit stamp span (2^31 ms, about 24.9 days)
// where a modular comparison with the old stamp reads it as earlier. A
// copy within twice the age bound still makes none.
func TestLearnSenderHomeLongSilent(t *testing.T) {
	const maxAge = 30 * time.Second
	const k = 77
	home := netip.MustParseAddrPort("10.0.0.1:7000")
	s0 := stampOf(time.Unix(1_800_000_000, 0))
	now0 := int64(time.Hour)
	for _, tc := range []struct {
		name  string
		after time.Duration // engine time since the home last heard
		want  bool          // the request from a new address makes an entry
	}{
		{"copy", time.Second, false},
		{"within-bound", 2 * maxAge, false},
		{"past-bound", 2*maxAge + time.Millisecond, true},
		{"past-half-span", 1<<31*time.Millisecond + time.Hour, true},
		{"past-full-span", 1<<32*time.Millisecond + time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tb peerTable
			now := now0
			tb.init(4, int64(time.Second), maxAge, func() int64 { return now })
			h := tb.learnSender(home, k, s0, now)
			if h == nil {
				t.Fatal("no entry for the sender's first request")
			}
			h.noteStamp(s0, false)
			h.lastHeard.Store(now)
			h.state.Store(uint32(PeerDead))
			now += int64(tc.after)
			st := s0 // a copy of what the home heard
			if tc.want {
				st = stampOf(time.Unix(1_800_000_000, 0).Add(tc.after))
			}
			addr := netip.MustParseAddrPort("10.0.0.2:7000")
			if p := tb.learnSender(addr, k, st, now); (p != nil) != tc.want {
				t.Fatalf("request %v after the home last heard (stamp %d, home's %d): entry made %v, want %v",
					tc.after, st, s0, p != nil, tc.want)
			}
		})
	}
}

// TestRequestAfterLongSilenceIsSignOfLife: a peer's entry holds the last
// stamp it heard for as long as it stays, and a dead one (MarkDead) is
// never swept. Once that stamp was heard longer ago than twice the age
// bound, no copy of what the entry heard passes the age bound, so the
// peer's request, weeks on, is a sign of life that revives it, also past
// 2^31 ms (about 24.9 days), where a modular comparison with the old
// stamp reads it as earlier.
func TestRequestAfterLongSilenceIsSignOfLife(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		s := w.rawSender(srv.Addr(), keyA, 77, 5)
		s.callOK(s.request(CallPing, 1<<20, 0, nil), "ping")
		p := srv.peers.lookup(s.addr())
		if p == nil {
			t.Fatal("no entry for the sender")
		}
		srv.MarkDead(s.addr())
		// As if the entry last heard the peer 25 days ago.
		const silence = 25 * 24 * time.Hour
		p.stamp.Store(stampHeard | uint64(nowStamp()-uint32(silence/time.Millisecond)))
		old := srv.Now() - int64(silence)
		p.lastHeard.Store(old)
		s.callOK(s.request(CallPing, 2<<20, 0, nil), "ping after the silence")
		if in, _ := srv.Peer(s.addr()); in.LastHeardNs == old || in.State != PeerAlive {
			t.Fatalf("the dead peer's request after %v of silence was no sign of life: %v, last heard %d (was %d)",
				silence, in.State, in.LastHeardNs, old)
		}
	})
}

// calledOnce opens a keyed server with 16 duplicate-cache entries and a
// raw sender of node id src and incarnation inc, whose non-idempotent
// request it returns once it ran.
func calledOnce(w *simWorld, src, inc uint32) (*testServer, *rawSender, []byte) {
	srv := w.server(func(c *Config) { c.Key = keyA; c.DupEntries = 16 })
	s := w.rawSender(srv.Addr(), keyA, src, inc)
	req := s.request(callIncr, 1<<20, srv.Incarnation(), nil)
	s.callOK(req, "call")
	return srv, s, req
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

// TestHomesOfBusyAddressBounded: an address that stays busy is never
// swept, and each client incarnation (node id 0) heard from it made a
// home there. The sweep releases the home of a sender that holds nothing
// at it any more (no floor or cache entry of its calls can refuse a copy,
// DupAge since the home was made, not the address's latest sender), so
// the homes kept are those of the senders of the last hold window, not of
// every one ever heard; the releases are counted (homes-released). In
// virtual time on rfc/simnet.
func TestHomesOfBusyAddressBounded(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		cfg := srv.cfg
		conn := &simRaw{c: w.attach(), in: make(chan []byte, simnet.InboxLen)}
		t.Cleanup(func() { conn.c.Close() })
		go conn.read()
		// A new client every gap keeps the address heard well within
		// DupAge: its entry is never idle.
		gap := cfg.DupAge / 3
		// What a home may be kept for: its calls' hold (budget,
		// retransmission timeout, twice the age bound, and the window
		// after the entry's keep time), DupAge after it was made, and a
		// sweep period.
		budget := 5 * time.Second // rawSender.request's
		span := budget + 2*cfg.MaxRTO + 2*cfg.MaxAge + cfg.DupAge + time.Duration(srv.sweepEvery())
		bound := int(span/gap) + 2
		clients := 4 * bound
		for i := 1; i <= clients; i++ {
			s := rawSenderOn(t, nil, conn, srv.Addr(), keyA, 0, uint32(i))
			s.callOK(s.request(callIncr, 1<<20, srv.Incarnation(), nil), "call of client %d", i)
			time.Sleep(gap)
		}
		srv.peers.mu.RLock()
		homes, entries := len(srv.peers.home), len(srv.peers.m)
		srv.peers.mu.RUnlock()
		if homes > bound {
			t.Fatalf("%d client incarnations at one busy address: %d homes kept (%d peer entries), want at most %d",
				clients, homes, entries, bound)
		}
		if n := dropCount(srv.Endpoint, "homes-released"); n < int64(clients-bound) {
			t.Fatalf("homes-released %d, want at least %d", n, clients-bound)
		}
		// The latest sender keeps its home: a copy of its call from
		// another address meets its cache entry there, unanswered.
		last := rawSenderOn(t, nil, conn, srv.Addr(), keyA, 0, uint32(clients+1))
		req := last.request(callIncr, 1<<20, srv.Incarnation(), nil)
		last.callOK(req, "call of the latest client")
		runs := srv.runs.Load()
		w.replayFrom(srv.Addr(), 1, req)
		if n := srv.runs.Load(); n != runs {
			t.Fatalf("a copy of the latest client's call from another address ran: runs %d -> %d", runs, n)
		}
	})
}
