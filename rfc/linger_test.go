package rfc

import (
	"context"
	"math"
	"testing"
	"time"

	"fastcall/wire"
)

// timerSleep reports whether the timer goroutine of ep sleeps with an
// empty heap, until when, and when it last saw callers busy (0: never);
// busyAt is the one the goroutine went to sleep with, as it changes only
// once the goroutine is awake.
func timerSleep(ep *Endpoint) (asleep bool, wakeAt, busyAt int64) {
	ep.timers.mu.Lock()
	defer ep.timers.mu.Unlock()
	if ep.timers.busy {
		busyAt = ep.timers.busyAt
	}
	return len(ep.timers.h) == 0 && ep.timers.wakeAt != math.MaxInt64, ep.timers.wakeAt, busyAt
}

// TestTimerLingerAfterCalls checks that the timer goroutine of a socket
// endpoint, once it dropped the timer of a finished call, sleeps at most
// MinRTO while calls are being made, so that the next call's timer (due
// MinRTO or more after its push) does not kick it; and that after
// timerLinger wake-ups with no call it sleeps as long as its heap lets it.
func TestTimerLingerAfterCalls(t *testing.T) {
	const minRTO = 20 * time.Millisecond // linger lasts timerLinger of these
	mod := func(c *Config) { c.MinRTO, c.InitialRTO = minRTO, minRTO }
	srv := newTestServer(t, mod)
	cli := newTestEndpoint(t, mod)
	if cli.timers.alarm == nil {
		t.Skip("no alarm on this platform")
	}
	var ps wire.Params
	ps.Reset(make([]byte, 64))
	ps.Bytes([]byte("x"))
	// context.Background: a context under watch (cancel.go) would
	// keep the goroutine waking anyway. Calls are made one after another
	// until the goroutine has been seen asleep 20 times; each time it
	// wakes within minRTO.
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := cli.Call(context.Background(), srv.Addr(), callEcho, &ps, nil); err != nil {
				done <- err
				return
			}
		}
	}()
	// The first push kicks a goroutine asleep until its sweep; until it
	// has woken, it still reads as asleep with that wake-up time.
	time.Sleep(2 * minRTO)
	// A caller that falls behind (a loaded machine stalls it) leaves the
	// goroutine wake-ups with fewer than timerBusyPushes pushes, and it
	// rightly stops lingering timerLinger MinRTOs after the last busy one:
	// such a sleep is not counted. One that began sooner after a busy
	// wake-up (busyAt is no later than the time it began) is a defect.
	seen := 0
	for end := time.Now().Add(10 * time.Second); seen < 20 && time.Now().Before(end); time.Sleep(100 * time.Microsecond) {
		if asleep, wakeAt, busyAt := timerSleep(cli); asleep {
			now := cli.Now()
			d := time.Duration(wakeAt - now)
			if d <= minRTO {
				seen++
			} else if busyAt != 0 && now-busyAt < timerLinger*int64(minRTO) {
				close(stop)
				<-done
				t.Fatalf("while calls are made the timer goroutine sleeps %v, more than MinRTO (%v), %v after a busy wake-up: the next call's push kicks it",
					d, minRTO, time.Duration(now-busyAt))
			}
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("the timer goroutine was never seen asleep while calls were made")
	}
	// With no call for timerLinger wake-ups it sleeps until its sweep.
	deadline := time.Now().Add(time.Duration(4*timerLinger)*minRTO + 10*time.Second)
	for {
		asleep, wakeAt, _ := timerSleep(cli)
		if asleep && time.Duration(wakeAt-cli.Now()) > minRTO {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle endpoint's timer goroutine still wakes every MinRTO")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTimerNoLingerForSparseCalls checks that an endpoint making one call
// every 100 ms, as a heartbeat member does, puts its timer goroutine to
// sleep at most twice per call: once after the call's push kicked it, and
// once after the call's first timer, dropped by then. A goroutine that
// lingered after each push would sleep timerLinger times more.
func TestTimerNoLingerForSparseCalls(t *testing.T) {
	const (
		minRTO = 20 * time.Millisecond // above a loopback round trip, even under -race
		calls  = 20
		every  = 100 * time.Millisecond
	)
	mod := func(c *Config) { c.MinRTO, c.InitialRTO = minRTO, minRTO }
	srv := newTestServer(t, mod)
	cli := newTestEndpoint(t, mod)
	a := cli.timers.alarm
	if a == nil {
		t.Skip("no alarm on this platform")
	}
	slept := countSleeps(a)
	var ps wire.Params
	ps.Reset(make([]byte, 64))
	ps.Bytes([]byte("x"))
	call := func() {
		if err := cli.Call(context.Background(), srv.Addr(), callEcho, &ps, nil); err != nil {
			t.Fatal(err)
		}
	}
	call() // the peer's first round trip
	time.Sleep(every)
	before := slept()
	for i := 0; i < calls; i++ {
		call()
		time.Sleep(every)
	}
	n := slept() - before
	t.Logf("%d sleeps of the timer goroutine for %d calls %v apart", n, calls, every)
	if n > 2*calls+2 {
		t.Fatalf("%d sleeps of the timer goroutine for %d calls %v apart: more than two a call", n, calls, every)
	}
}

// countSleeps returns a function that counts the sleeps of the timer
// goroutine that sleeps on a from now on. Every sleep sets the alarm as
// the sleeper's own setting (alarm.set, at math.MaxInt64); a push's
// setting, a completion's or a kick is not a sleep. Settings are made
// under a.mu.
// sparsePair starts a server and a client endpoint with MinRTO and
// InitialRTO rto and the peer sweep an hour off, so that the client's
// timer goroutine sleeps long between sparse calls; it returns them, the
// count of the client's timer sleeps (countSleeps) and echo parameters.
// Skipped where the engine has no alarm.
func sparsePair(t *testing.T, rto time.Duration) (srv *testServer, cli *Endpoint, slept func() int, ps *wire.Params) {
	t.Helper()
	mod := func(c *Config) {
		c.MinRTO, c.InitialRTO = rto, rto
		c.DupAge = time.Hour // the peer sweep, and so the idle sleep, is sweepMax away
	}
	srv = newTestServer(t, mod)
	cli = newTestEndpoint(t, mod)
	if cli.timers.alarm == nil {
		t.Skip("no alarm on this platform")
	}
	ps = new(wire.Params)
	ps.Reset(make([]byte, 64))
	ps.Bytes([]byte("x"))
	return srv, cli, countSleeps(cli.timers.alarm), ps
}

func countSleeps(a *alarm) func() int {
	var sleeps int
	a.mu.Lock()
	setF := a.setF
	a.setF = func(fd uintptr) {
		if a.at == math.MaxInt64 {
			sleeps++
		}
		setF(fd)
	}
	a.mu.Unlock()
	return func() int {
		a.mu.Lock()
		defer a.mu.Unlock()
		return sleeps
	}
}

// TestTimerNoWakeForAnsweredSparseCalls checks that a call made while the
// timer goroutine sleeps long, and answered before its first timer, costs
// the goroutine no wake-up: the reply sets the alarm back to when the
// goroutine would have woken without the call. Before, the goroutine woke
// once per call, at the call's first timer, to drop it.
func TestTimerNoWakeForAnsweredSparseCalls(t *testing.T) {
	const (
		rto   = 200 * time.Millisecond // far above a loopback round trip, even loaded and under -race
		calls = 10
		every = rto + rto/2 // more than MinRTO apart: sparse (timerHeap.add)
	)
	srv, cli, slept, ps := sparsePair(t, rto)
	call := func() {
		if err := cli.Call(context.Background(), srv.Addr(), callEcho, ps, nil); err != nil {
			t.Fatal(err)
		}
	}
	call() // the peer's first round trip
	time.Sleep(2 * every)
	before := slept()
	for i := 0; i < calls; i++ {
		call()
		time.Sleep(every)
	}
	n := slept() - before
	retrans := allRetrans(cli.Stats())
	t.Logf("%d sleeps of the timer goroutine for %d answered calls %v apart, %d retransmissions", n, calls, every, retrans)
	// A call answered only after its first timer (a loaded machine)
	// wakes the goroutine, as it must: that wake-up is not counted.
	if n > int(retrans)+calls/5 {
		t.Fatalf("%d sleeps of the timer goroutine for %d answered calls %v apart (%d retransmitted): a wake-up per call", n, calls, every, retrans)
	}
}

// TestTimerSettledLosesNoTimer checks that a call nobody answers is still
// retransmitted and times out while sparse calls answered before their
// first timer set the alarm back (timerHeap.settled), each made while the
// unanswered call's timer is in the heap: the alarm is never set back
// past a timer still waiting.
func TestTimerSettledLosesNoTimer(t *testing.T) {
	const (
		rto     = 20 * time.Millisecond
		timeout = 600 * time.Millisecond
	)
	srv, cli, slept, ps := sparsePair(t, rto)
	dst := silentAddr(t)
	for round := 0; round < 3; round++ {
		before := slept()
		done := make(chan error, 1)
		err := cli.GoFunc(dst, callEchoW, ps, timeout, func(p *Pending) { done <- p.Err() })
		if err != nil {
			t.Fatal(err)
		}
		// Answered calls, more than MinRTO apart (sparse), until the
		// unanswered one ends. context.Background: a context under
		// watch would keep the goroutine waking anyway.
		var res error
		answered := 0
		guard := time.After(30 * time.Second)
	wait:
		for {
			select {
			case res = <-done:
				break wait
			case <-guard:
				t.Fatal("a call nobody answers never timed out: its timer was lost")
			case <-time.After(rto + rto/2):
			}
			var aps wire.Params
			aps.Reset(make([]byte, 64))
			aps.Bytes([]byte("y"))
			if err := cli.Call(context.Background(), srv.Addr(), callEcho, &aps, nil); err != nil {
				t.Fatal(err)
			}
			answered++
		}
		if res != wire.ETIMEDOUT {
			t.Fatalf("the unanswered call: %v, want ETIMEDOUT", res)
		}
		retrans := retransOf(cli, callEchoW)
		t.Logf("round %d: %d answered calls, %d retransmissions of the unanswered ones so far, %d sleeps", round, answered, retrans, slept()-before)
		if retrans < uint64(2*(round+1)) {
			t.Fatalf("%d retransmissions in %d calls of %v with a %v timeout: timers were lost", retrans, round+1, timeout, rto)
		}
	}
}
