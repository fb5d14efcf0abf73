//go:build linux

package rfc

import (
	"math"
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

// alarmHeap returns a timer heap with a kernel alarm, closed when the test
// ends; the test is skipped where there is no alarm. The call in slot i
// waits with call id i+1: a push of an entry of a call that finished
// does not arm the alarm (timerHeap.add).
func alarmHeap(t *testing.T) (*timerHeap, *alarm) {
	a := newAlarm()
	if a == nil {
		t.Skip("no alarm on this platform")
	}
	t.Cleanup(func() { a.close() })
	th := new(timerHeap)
	th.init(8)
	th.alarm = a
	th.slots = make([]Pending, 8)
	for i := range th.slots {
		th.slots[i].live.Store(uint64(i + 1))
	}
	return th, a
}

// TestTimerPushWhileAwake checks that a push while the timer goroutine is
// awake marks the alarm for it to look again, and leaves the kernel timer
// alone: the goroutine reads the mark before it waits, so a system call on
// the pushing caller's path would buy nothing.
func TestTimerPushWhileAwake(t *testing.T) {
	th, a := alarmHeap(t)
	a.set(time.Hour)
	th.push(timerEntry{at: 500, id: 1, idx: 0}) // init leaves the goroutine awake
	if !a.takeKick() {
		t.Fatal("a push while the goroutine is awake left no mark")
	}
	time.Sleep(5 * time.Millisecond)
	if alarmFired(t, a) {
		t.Fatal("a push while the goroutine is awake set the kernel timer")
	}
	// Asleep until 1000 (engine time 0 now), an entry due at 500 arms
	// the alarm for 500 ns from now.
	th.now = func() int64 { return 0 }
	th.sleepingUntil(1000)
	th.push(timerEntry{at: 500, id: 2, idx: 1})
	time.Sleep(5 * time.Millisecond)
	if !alarmFired(t, a) {
		t.Fatal("an entry due before the goroutine wakes did not fire the alarm")
	}
}

// TestTimerPushArmsForEntry checks that a push of an entry due before the
// sleeping goroutine wakes arms the alarm for the entry's time, not for
// at once: the goroutine wakes once, when the entry is due, instead of
// once to set the alarm for it and once more then. Of two such pushes the
// earlier entry sets the alarm, whatever their order.
func TestTimerPushArmsForEntry(t *testing.T) {
	th, a := alarmHeap(t)
	th.now = func() int64 { return 0 }
	th.sleepingUntil(int64(2 * time.Hour))
	a.set(2 * time.Hour)
	th.push(timerEntry{at: int64(time.Hour), id: 1, idx: 0})
	time.Sleep(5 * time.Millisecond)
	if alarmFired(t, a) {
		t.Fatal("an entry due in an hour fired the alarm at once")
	}
	if a.at != int64(time.Hour) || a.d != time.Hour {
		t.Fatalf("alarm armed for %v (engine time %d), want an hour", a.d, a.at)
	}
	// An entry due in 2 ms arms it earlier; a later one does not undo it.
	th.push(timerEntry{at: int64(2 * time.Millisecond), id: 2, idx: 1})
	a.armEarlier(int64(30*time.Minute), 30*time.Minute) // a slower caller's arm for an entry in between
	if a.d != 2*time.Millisecond {
		t.Fatalf("alarm armed for %v, want 2ms", a.d)
	}
	for end := time.Now().Add(10 * time.Second); !alarmFired(t, a); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the alarm armed for 2ms did not fire")
		}
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

// TestTimerSettledSetsAlarmBack checks what the reply to a call does to
// the alarm its push armed (timerHeap.settled): it sets the alarm back to
// the goroutine's own wake-up, unless the alarm was kicked since, a call
// still waiting needs it earlier, or the push was not sparse; and a push
// of a call answered before it does not arm the alarm.
func TestTimerSettledSetsAlarmBack(t *testing.T) {
	const own = int64(2 * time.Hour)
	hour := int64(time.Hour)
	th, a := alarmHeap(t)
	th.now = func() int64 { return 0 }
	sleep := func() {
		th.mu.Lock()
		th.h = th.h[:0]
		th.mu.Unlock()
		th.sleepingUntil(own)
		a.set(time.Duration(own))
	}
	// finish completes the call in slot idx and delivers its reply.
	finish := func(idx int32) {
		th.slots[idx].live.Store(0)
		th.settled(uint64(idx + 1))
	}
	check := func(what string, at, wakeAt int64) {
		t.Helper()
		th.mu.Lock()
		w := th.wakeAt
		th.mu.Unlock()
		if a.at != at || w != wakeAt {
			t.Fatalf("%s: alarm set for %d, goroutine wakes at %d; want %d and %d", what, a.at, w, at, wakeAt)
		}
	}

	sleep()
	th.push(timerEntry{at: hour, id: 1, idx: 0})
	check("a sparse push", hour, hour)
	finish(0)
	check("its reply", own, own)
	if a.d != time.Duration(own) {
		t.Fatalf("alarm set back to fire after %v, want %v", a.d, time.Duration(own))
	}

	sleep()
	th.push(timerEntry{at: hour, id: 2, idx: 1})
	a.kick()
	finish(1)
	check("a reply after a kick", math.MinInt64, hour)

	sleep()
	th.push(timerEntry{at: hour, id: 3, idx: 2})
	th.push(timerEntry{at: hour + hour/2, id: 4, idx: 3}) // waits, due before own
	finish(2)
	check("a reply with a call still waiting earlier", hour, hour)

	sleep()
	th.slots[4].live.Store(0) // answered before its push
	th.push(timerEntry{at: hour, id: 5, idx: 4})
	check("a push of an answered call", math.MaxInt64, own)

	sleep()
	th.gap = hour // the push before armed the alarm less than gap ago
	th.push(timerEntry{at: hour, id: 6, idx: 5})
	finish(5)
	check("a reply to a call that was not sparse", hour, hour)

	th.push(timerEntry{at: hour / 2, id: 7, idx: 6})
	th.mu.Lock()
	th.wakeAt = math.MaxInt64 // the goroutine woke
	th.mu.Unlock()
	th.sparse.Store(7)
	finish(6)
	check("a reply while the goroutine is awake", hour/2, math.MaxInt64)
}
