package client

import (
	"testing"
	"time"

	"fastcall/wire"
)

// TestReachNote: an outage is logged once however many calls go
// unanswered, only when every center is silent, its end is logged only
// if it was, and outages in quick succession are logged at most once per
// OutageLogEvery.
func TestReachNote(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at     time.Duration
		center int
		e      wire.Errno
		want   reachEvent
	}
	cases := []struct {
		name  string
		n     int
		steps []step
	}{
		{"one center, retried", 1, []step{
			{0, 0, wire.ETIMEDOUT, reachDown},
			{time.Second, 0, wire.ETIMEDOUT, reachNone},
			{2 * time.Second, 0, wire.ENODEAD, reachNone},
			{3 * time.Second, 0, wire.ECANCELED, reachNone},
			{4 * time.Second, 0, wire.EBUSY, reachBackUp}, // an error reply is an answer
			{5 * time.Second, 0, wire.OK, reachNone},
		}},
		{"two centers, one silent", 2, []step{
			{0, 0, wire.ETIMEDOUT, reachNone},
			{0, 1, wire.OK, reachNone},
			{time.Second, 0, wire.ETIMEDOUT, reachNone},
			{2 * time.Second, 1, wire.ETIMEDOUT, reachDown},
			{3 * time.Second, 0, wire.ETIMEDOUT, reachNone},
			{4 * time.Second, 1, wire.OK, reachBackUp},
		}},
		{"flapping", 1, []step{
			{0, 0, wire.ETIMEDOUT, reachDown},
			{time.Second, 0, wire.OK, reachBackUp},
			{2 * time.Second, 0, wire.ETIMEDOUT, reachNone}, // within OutageLogEvery
			{3 * time.Second, 0, wire.OK, reachNone},        // not logged: its start was not
			{4 * time.Second, 0, wire.ETIMEDOUT, reachNone},
			{OutageLogEvery, 0, wire.ETIMEDOUT, reachDown}, // still down, the bound passed
			{OutageLogEvery + time.Second, 0, wire.ETIMEDOUT, reachNone},
			{OutageLogEvery + 2*time.Second, 0, wire.OK, reachBackUp},
		}},
	}
	for _, tc := range cases {
		var r reach
		for k, s := range tc.steps {
			got, d := r.note(s.center, tc.n, s.e, t0.Add(s.at))
			if got != s.want {
				t.Errorf("%s, step %d (%v at center %d): %v, want %v", tc.name, k, s.e, s.center, got, s.want)
			}
			if got == reachBackUp && d <= 0 {
				t.Errorf("%s, step %d: outage of %v", tc.name, k, d)
			}
		}
	}
}
