package heartbeat

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMembersWhileFirstRepliesArrive: members listed by address learn
// each other's node ids from the first probe replies while Members and
// Member are read without pause. Under -race a node id taken from a
// reply outside the service's lock is reported as a data race.
func TestMembersWhileFirstRepliesArrive(t *testing.T) {
	for round := 0; round < 10; round++ {
		nodes := cluster(t, 6, configAt(20*time.Millisecond))
		var stop atomic.Bool
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					for _, m := range n.svc.Members() {
						n.svc.Member(m.Addr)
					}
					// Leave the lock to the probe loop between
					// scans, or six readers starve it.
					time.Sleep(50 * time.Microsecond)
				}
			}()
		}
		known := waitFor(10*time.Second, func() bool {
			for _, n := range nodes {
				for _, m := range n.svc.Members() {
					if m.Node == 0 {
						return false
					}
				}
			}
			return true
		})
		stop.Store(true)
		wg.Wait()
		if !known {
			t.Fatalf("round %d: some member's node id never learnt", round)
		}
		for _, n := range nodes {
			n.svc.Close()
		}
	}
}
