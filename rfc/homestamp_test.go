package rfc

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/wire"
)

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
		if e := s.call(s.request(CallPing, 1<<20, 0, nil)); e != wire.OK {
			t.Fatalf("ping: %v", e)
		}
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
		if e := s.call(s.request(CallPing, 2<<20, 0, nil)); e != wire.OK {
			t.Fatalf("ping after the silence: %v", e)
		}
		if in, _ := srv.Peer(s.addr()); in.LastHeardNs == old || in.State != PeerAlive {
			t.Fatalf("the dead peer's request after %v of silence was no sign of life: %v, last heard %d (was %d)",
				silence, in.State, in.LastHeardNs, old)
		}
	})
}
