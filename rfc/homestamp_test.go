package rfc

import (
	"net/netip"
	"testing"
	"time"
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
			h.noteStamp(s0)
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
