//go:build linux

package rfc

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// alarmFired reports whether the alarm's timerfd has an expiry to read,
// without waiting.
func alarmFired(t *testing.T, a *alarm) bool {
	t.Helper()
	var buf [8]byte
	var rerr error
	if err := a.raw.Control(func(fd uintptr) { _, rerr = unix.Read(int(fd), buf[:]) }); err != nil {
		t.Fatal(err)
	}
	switch rerr {
	case nil:
		return true
	case unix.EAGAIN:
		return false
	}
	t.Fatal(rerr)
	return false
}

// TestTimerPushWhileAwake checks that a push while the timer goroutine is
// awake marks the alarm for it to look again, and leaves the kernel timer
// alone: the goroutine reads the mark before it waits, so a system call on
// the pushing caller's path would buy nothing.
func TestTimerPushWhileAwake(t *testing.T) {
	a := newAlarm()
	if a == nil {
		t.Skip("no alarm on this platform")
	}
	defer a.close()
	var th timerHeap
	th.init(8)
	th.alarm = a
	a.set(time.Hour)
	th.push(timerEntry{at: 500, id: 1, idx: 0}) // init leaves the goroutine awake
	if !a.takeKick() {
		t.Fatal("a push while the goroutine is awake left no mark")
	}
	time.Sleep(5 * time.Millisecond)
	if alarmFired(t, a) {
		t.Fatal("a push while the goroutine is awake set the kernel timer")
	}
	// Asleep until 1000, an entry due at 500 still kicks it at once.
	th.sleepingUntil(1000)
	th.push(timerEntry{at: 500, id: 2, idx: 1})
	time.Sleep(5 * time.Millisecond)
	if !alarmFired(t, a) {
		t.Fatal("an entry due before the goroutine wakes did not fire the alarm")
	}
}

// TestTimerPushWithinSlack checks that a push due less than the heap's
// slack (a tick on a socket endpoint) before the goroutine wakes does not
// kick it, and one due earlier than that does.
func TestTimerPushWithinSlack(t *testing.T) {
	checkPushKicks(t, 100, 950, 850, "an entry due within the slack before the wake-up kicked the goroutine",
		"an entry due more than the slack before the wake-up did not kick the goroutine")
}

// TestSocketEndpointTimerSlack checks that a socket endpoint's timer heap
// has a tick of slack where it has an alarm (a kick is a system call).
func TestSocketEndpointTimerSlack(t *testing.T) {
	ep := newTestEndpoint(t, nil)
	if ep.timers.alarm == nil {
		t.Skip("no alarm on this platform")
	}
	if ep.timers.slack != int64(ep.tick) {
		t.Fatalf("slack %d, tick %d", ep.timers.slack, ep.tick)
	}
}
