package registrytest

import (
	"time"

	"fastcall/node/registry/agent"
)

// syncPoll is the period at which AwaitSynced reads the agents' watches.
const syncPoll = 10 * time.Millisecond

// AwaitSynced waits until the watch of every agent in ags is synced or
// the time is past end, reading them every syncPoll, and returns how many
// are synced (len(ags) when all are).
func AwaitSynced(ags []*agent.Agent, end time.Time) int {
	for ; ; time.Sleep(syncPoll) {
		synced := 0
		for _, a := range ags {
			if a.Watch().Synced() {
				synced++
			}
		}
		if synced == len(ags) || time.Now().After(end) {
			return synced
		}
	}
}

// AwaitKey waits until the local map of every agent in ags holds key or
// the time is past end, reading the maps every poll. It calls held(i)
// (when held is not nil) the first time it finds agent i's map holding
// key, and returns the indexes of the agents whose map did not hold it
// at end, nil when every map does. A registration's spread to the
// agents is timed with it: held sees the time each map took.
func AwaitKey(ags []*agent.Agent, key []byte, poll time.Duration, end time.Time, held func(i int)) []int {
	buf := make([]byte, 4096)
	left := make([]int, len(ags))
	for i := range left {
		left[i] = i
	}
	for {
		keep := left[:0]
		for _, i := range left {
			if _, err := ags[i].Map().Get(key, buf); err != nil {
				keep = append(keep, i)
			} else if held != nil {
				held(i)
			}
		}
		left = keep
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(end) {
			return left
		}
		time.Sleep(poll)
	}
}
