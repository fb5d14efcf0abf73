package rfc

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"fastcall/wire"
)

// TestAlarm checks the timer goroutine's alarm: it fires after the time
// set, a kick given before the wait is seen, and closing it ends the wait.
func TestAlarm(t *testing.T) {
	a := newAlarm()
	if a == nil {
		t.Skip("no alarm on this platform")
	}
	a.set(time.Millisecond)
	if !a.wait() {
		t.Fatal("wait: false before close")
	}
	if a.takeKick() {
		t.Fatal("takeKick: true without a kick")
	}
	a.set(time.Hour)
	a.kick()
	if !a.takeKick() {
		t.Fatal("takeKick: false after a kick")
	}
	if !a.wait() {
		t.Fatal("wait after a kick: false before close")
	}
	a.set(time.Hour)
	done := make(chan bool, 1)
	go func() { done <- a.wait() }()
	a.close()
	if <-done {
		t.Fatal("wait: true after close")
	}
}

// TestSocketTimerUsesAlarm checks that a socket endpoint's timer goroutine
// sleeps on the alarm where the platform has one.
func TestSocketTimerUsesAlarm(t *testing.T) {
	ep := newTestEndpoint(t, nil)
	a := newAlarm()
	if a == nil {
		t.Skip("no alarm on this platform")
	}
	a.close()
	if ep.timers.alarm == nil {
		t.Fatal("socket endpoint: no alarm")
	}
}

// TestTimerRoundSkipsFinishedCalls checks that the timer goroutine sleeps
// until the first call still waiting, not until the timer of a call that
// finished: the entries of finished calls at the top of the heap are
// dropped.
func TestTimerRoundSkipsFinishedCalls(t *testing.T) {
	ep, err := Open(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	now := ep.Now()
	ep.pending.slots[1].live.Store(77)
	ep.timers.push(timerEntry{at: now + int64(50*time.Millisecond), id: 5, idx: 0}) // finished
	ep.timers.push(timerEntry{at: now + int64(2*time.Second), id: 77, idx: 1})      // waiting
	var due [64]timerEntry
	sweepAt := now + int64(time.Hour)
	wait, again := ep.timerRound(&due, &sweepAt)
	if again {
		t.Fatal("again with nothing due")
	}
	if wait <= time.Second {
		t.Fatalf("sleeps %v: until the finished call's timer, not the waiting call's (2s)", wait)
	}
	if n := len(ep.timers.h); n != 1 {
		t.Fatalf("heap holds %d entries, want the waiting call's only", n)
	}
}

// TestCallRetransmitsAfterKick checks that a call made while the timer
// goroutine sleeps for long (nothing in flight, so until the next peer
// sweep) is retransmitted at its timeout: the first timer wakes the
// goroutine. The callee is a socket that never answers.
func TestCallRetransmitsAfterKick(t *testing.T) {
	dst := silentAddr(t)
	cli := newTestEndpoint(t, func(c *Config) {
		c.InitialRTO = 10 * time.Millisecond
		c.MinRTO = 10 * time.Millisecond
		c.DupAge = time.Hour // the peer sweep, and so the idle sleep, is sweepMax away
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := cli.Call(ctx, netip.AddrPortFrom(dst.Addr(), dst.Port()), callEcho, nil, nil)
	if err != wire.ETIMEDOUT {
		t.Fatalf("Call: %v, want ETIMEDOUT", err)
	}
	if retrans := retransOf(cli, callEcho); retrans < 3 {
		t.Fatalf("%d retransmissions in 2s with a 10ms timeout: the timer goroutine slept through them", retrans)
	}
}

// TestTimerPushKicksOnlyEarlier checks that a new timer wakes the sleeping
// timer goroutine only when it comes due before the goroutine wakes
// anyway, whatever the heap holds: a sequential caller's timers, each
// pushed into a heap the goroutine emptied, do not wake it one by one.
func TestTimerPushKicksOnlyEarlier(t *testing.T) {
	checkPushKicks(t, 0, 2000, 500, "a timer due after the goroutine's wake-up kicked it",
		"a timer due before the goroutine's wake-up did not kick it")
}

// checkPushKicks pushes into a heap with the given slack, whose goroutine
// sleeps until 1000, an entry due at quiet, which must not kick the
// goroutine (else quietMsg), then one due at kick, which must (else
// kickMsg).
func checkPushKicks(t *testing.T, slack, quiet, kick int64, quietMsg, kickMsg string) {
	t.Helper()
	var th timerHeap
	th.init(8)
	th.slack = slack
	th.sleepingUntil(1000)
	th.push(timerEntry{at: quiet, id: 1, idx: 0})
	select {
	case <-th.wake:
		t.Fatal(quietMsg)
	default:
	}
	th.push(timerEntry{at: kick, id: 2, idx: 1})
	select {
	case <-th.wake:
	default:
		t.Fatal(kickMsg)
	}
}
