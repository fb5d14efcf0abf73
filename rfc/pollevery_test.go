package rfc

import (
	"testing"
	"time"
)

// TestWatchPollEvery checks how often the timer goroutine asks watched
// contexts: once per MinRTO on a socket endpoint, whose every wake-up is a
// kernel timer and a thread woken through the poller, and once per tick on
// an endpoint whose goroutine sleeps on a runtime timer.
func TestWatchPollEvery(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MinRTO = 8 * time.Millisecond
	cfg.InitialRTO = cfg.MinRTO
	ep, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	// One caller under watch, with no context in its slot yet: the scan
	// finds nothing to end and polls on.
	ep.watch.bits[0].Or(1)
	ep.watch.n.Add(1)
	var due [64]timerEntry
	sweepAt := ep.Now() + int64(time.Hour)
	wait, again := ep.timerRound(&due, &sweepAt)
	if again {
		t.Fatal("again with nothing due")
	}
	want := ep.tick
	if ep.timers.alarm != nil {
		want = cfg.MinRTO
	}
	if wait != want {
		t.Fatalf("with a context under watch the goroutine sleeps %v, want %v (tick %v, MinRTO %v, alarm %v)",
			wait, want, ep.tick, cfg.MinRTO, ep.timers.alarm != nil)
	}
}
