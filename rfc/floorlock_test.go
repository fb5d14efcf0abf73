package rfc

import "testing"

// TestStrictFloorSparesNewInstance: a sender restarted more often than
// there are floor records does not lock its newest instance out. The
// records taken over fold into strict, which still refuses the calls of
// the instances that lost their records; a new instance, whose call ids
// start at a random point that may lie below strict's floor, has its
// calls served (before, strict refused every instance at the address
// until its hold: sim RFC seed 600060, a restarted sender refused ESTALE
// for the rest of the run).
func TestStrictFloorSparesNewInstance(t *testing.T) {
	p := &peerState{}
	const now, hold = 10, 1000
	// Six instances of node 1 at one address, each leaving a high floor.
	for inc := uint32(1); inc <= peerFloors+2; inc++ {
		p.raiseFloor(1, inc, 1<<40+uint64(inc), hold+int64(inc), now)
	}
	// The two taken over are still refused at and below their floors.
	for inc := uint32(1); inc <= 2; inc++ {
		if !p.belowFloor(1, inc, 1<<40+uint64(inc), now) || !p.belowFloor(1, inc, 5, now) {
			t.Fatalf("instance %d, whose record was taken over: a forgotten call may run again", inc)
		}
	}
	// New instances, with call ids far below strict's floor, are served
	// unless both their bits happen to be set (a few in a thousand).
	refused := 0
	for inc := uint32(1000); inc < 2000; inc++ {
		if p.belowFloor(1, inc, 5, now) {
			refused++
		}
	}
	if refused > 50 {
		t.Fatalf("%d of 1000 new instances refused by strict", refused)
	}
	// Once strict's hold has passed, the next fold starts it anew.
	p.raiseFloor(1, 77, 9, hold+10_000, hold+5000)
	if p.belowFloor(1, 1, 5, hold+5001) {
		t.Fatal("strict held past its hold")
	}
}
