package rfctest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
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
