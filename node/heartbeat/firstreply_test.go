package heartbeat

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestMembersWhileFirstRepliesTaken: the node id of a member first heard
// through the reply to this node's probe is written under the service
// lock that guards it, so Members (and a heartbeat served meanwhile),
// reading it under that lock while the probe loops take their first
// replies, race with no write. Run under -race, as make test does; the
// probe loop wrote it unlocked, and TestBrokenLinkIndirect and
// TestProbesPerIntervalBounded reported the race on a loaded host.
func TestMembersWhileFirstRepliesTaken(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = quiet
	for round := 0; round < 20; round++ {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			nodes := cluster(t, 4, cfg)
			known := func() bool {
				all := true
				for _, n := range nodes {
					for _, m := range n.svc.Members() {
						all = all && m.Node != 0
					}
				}
				return all
			}
			// Read without a pause but for yielding the processor: a read
			// between a probe loop's last lock and its first reply is
			// what the race detector needs.
			for end := time.Now().Add(10 * time.Second); !known(); {
				if time.Now().After(end) {
					t.Fatal("members never heard each other")
				}
				runtime.Gosched()
			}
		})
	}
}
