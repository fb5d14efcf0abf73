package rfctest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestListenCallClose: two endpoints from Listen call each other on
// loopback, carry the node id and the change of mod, and are closed when
// the test ends.
func TestListenCallClose(t *testing.T) {
	var closed *rfc.Endpoint
	t.Run("inner", func(t *testing.T) {
		srv := Listen(t, 7, nil)
		cli := Listen(t, 8, func(c *rfc.Config) { c.Workers = 1 })
		if cli.Config().NodeID != 8 || cli.Config().Workers != 1 || srv.Config().Logger != Quiet {
			t.Fatalf("config %+v", cli.Config())
		}
		if err := cli.Call(Context(t, 10*time.Second), srv.Addr(), rfc.CallPing, nil, nil); err != nil {
			t.Fatalf("ping: %v", err)
		}
		closed = cli
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := closed.Call(ctx, closed.Addr(), rfc.CallPing, nil, nil); err == nil {
		t.Fatal("endpoint still open after its test ended")
	}
}

// TestWaitFor: WaitFor reports a condition that comes true, and gives up
// on one that never does.
func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	if !WaitFor(10*time.Second, func() bool { return n.Add(1) == 3 }) {
		t.Fatal("a condition true on the third poll was not seen")
	}
	if WaitFor(5*time.Millisecond, func() bool { return false }) {
		t.Fatal("a false condition reported true")
	}
}

// TestInSim: endpoints from Sim.Listen call each other on the simulated
// network, each at its own address, with the node id and the change of
// mod; time in the bubble is virtual, so a call to an address where
// nothing listens ends ETIMEDOUT at its deadline, within one engine tick
// (MinRTO/4, at least 100µs).
func TestInSim(t *testing.T) {
	InSim(t, func(t *testing.T, s *Sim) {
		srv := s.Listen(7, nil)
		cli := s.Listen(8, func(c *rfc.Config) { c.Workers = 1 })
		if cli.Config().NodeID != 8 || cli.Config().Workers != 1 || srv.Config().Logger != Quiet || cli.Addr() == srv.Addr() {
			t.Fatalf("config %+v at %v, server at %v", cli.Config(), cli.Addr(), srv.Addr())
		}
		if err := cli.Call(Context(t, time.Second), srv.Addr(), rfc.CallPing, nil, nil); err != nil {
			t.Fatalf("ping: %v", err)
		}
		const deadline = 300 * time.Millisecond
		tick := max(cli.Config().MinRTO/4, 100*time.Microsecond)
		start := time.Now()
		err := cli.Call(Context(t, deadline), s.Addr(), rfc.CallPing, nil, nil)
		if took := time.Since(start); wire.AsErrno(err) != wire.ETIMEDOUT || took < deadline || took > deadline+tick {
			t.Fatalf("call to a silent address: %v after %v, want ETIMEDOUT at %v (+%v)", err, took, deadline, tick)
		}
	})
}

// TestMust: Must hands back the endpoint of a call that succeeded and
// panics with the error of one that failed.
func TestMust(t *testing.T) {
	ep := Must(rfc.Open(Config(9)))
	defer ep.Close()
	if ep.Config().NodeID != 9 {
		t.Fatalf("node %d, want 9", ep.Config().NodeID)
	}
	bad := Config(9)
	bad.Addr = "not an address"
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an endpoint that failed to open")
		}
	}()
	Must(rfc.Open(bad))
	t.Fatal("Must returned after a failure")
}

// failRecorder is a testing.TB that records Errorf instead of failing.
type failRecorder struct {
	testing.TB
	failed bool
}

func (r *failRecorder) Helper()               {}
func (r *failRecorder) Errorf(string, ...any) { r.failed = true }

// TestConfigError: ConfigError accepts the ConfigError of the scope and
// field asked, and fails the test on any other scope, field or error, and
// on a wrapped one (its errno is lost: wire.AsErrno gives EFAULT).
func TestConfigError(t *testing.T) {
	ce := rfc.BadConfig("heartbeat", "Interval", 0, "must be positive")
	for _, tc := range []struct {
		name         string
		err          error
		scope, field string
		ok           bool
	}{
		{"match", ce, "heartbeat", "Interval", true},
		{"wrapped", fmt.Errorf("start: %w", ce), "heartbeat", "Interval", false},
		{"other field", ce, "heartbeat", "Tick", false},
		{"other scope", ce, "dispatch", "Interval", false},
		{"nil", nil, "heartbeat", "Interval", false},
		{"errno only", wire.EINVAL, "heartbeat", "Interval", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &failRecorder{TB: t}
			got := ConfigError(r, tc.err, tc.scope, tc.field)
			if r.failed == tc.ok || (got != nil) != tc.ok {
				t.Fatalf("ConfigError(%v, %s, %s) = %v, failed %v; want ok %v", tc.err, tc.scope, tc.field, got, r.failed, tc.ok)
			}
			if tc.ok && got != ce {
				t.Fatalf("returned %p, want %p", got, ce)
			}
		})
	}
}

// TestConfigOutcome: with no field ConfigOutcome wants the configuration
// accepted; with one, refused naming it.
func TestConfigOutcome(t *testing.T) {
	ce := rfc.BadConfig("route", "Calls", nil, "empty")
	for _, tc := range []struct {
		name  string
		err   error
		field string
		ok    bool
	}{
		{"accepted", nil, "", true},
		{"refused, want accepted", ce, "", false},
		{"refused naming it", ce, "Calls", true},
		{"accepted, want refused", nil, "Calls", false},
		{"refused naming another", ce, "TablePrefix", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &failRecorder{TB: t}
			ConfigOutcome(r, tc.err, "route", tc.field)
			if r.failed == tc.ok {
				t.Fatalf("ConfigOutcome(%v, %q): failed %v, want ok %v", tc.err, tc.field, r.failed, tc.ok)
			}
		})
	}
}
