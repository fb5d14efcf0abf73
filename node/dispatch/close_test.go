package dispatch

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestCloseSendsNoQueuedCall: the calls still queued when Close is called
// end with ECLOSED unsent. A sender that was taking work when Close came
// must not go on sending the queue: Close releases the operation's marker
// at once, so a call sent after it runs at its target with the resource
// unlocked. One operation of 4000 targets (addresses nobody listens on,
// so no call completes) is submitted and Close follows at once, eight
// times: sending 4000 calls takes far longer than Close takes to stop the
// senders, so a sender that heeds Close leaves most of them unsent.
func TestCloseSendsNoQueuedCall(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		const n, rounds = 4000, 8
		addrs := make([]netip.AddrPort, n)
		for i := range addrs {
			addrs[i] = w.addr()
		}
		ctx := ctxFor(t, 10*time.Second)
		for r := 0; r < rounds; r++ {
			ep := w.ep(uint32(1+r), func(c *rfc.Config) { c.MaxPending = n + 16 })
			d := newDispatcher(t, ep, NewMemStore(0), func(c *Config) { c.Senders = 1 })
			id, err := d.Submit(ctx, opFor("close/queued", KindUpdate, Call{No: callIncr}, addrs, 5*time.Second))
			must(t, err)
			must(t, d.Close())
			st, err := d.Wait(ctx, id)
			must(t, err)
			for _, o := range st.Outcomes {
				if !o.Done || o.Errno != wire.ECLOSED {
					t.Fatalf("round %d: outcome %+v, want ECLOSED", r, o)
				}
			}
			sent := d.Stats().Sent
			t.Logf("round %d: %d of %d calls sent before Close", r, sent, n)
			if sent == n {
				t.Fatalf("round %d: Close sent all %d queued calls before it ended them", r, n)
			}
		}
	})
}

// TestCallsAfterClose: once the dispatcher is closed, a remote SUBMIT is
// answered ECLOSED and sends nothing, while STATUS still answers for the
// operations it retains (a client polling with WaitRemote gets the
// outcome the operation ended with).
func TestCallsAfterClose(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(2)
		srv := w.ep(1, nil)
		d := newDispatcher(t, srv, NewMemStore(0), func(c *Config) { c.RemoteTargets = ts.addrs() })
		cli := w.ep(2, nil)
		ctx := ctxFor(t, 10*time.Second)
		id, err := SubmitRemote(ctx, cli, srv.Addr(), opFor("after/close", KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second))
		must(t, err)
		_, err = d.Wait(ctx, id)
		must(t, err)
		must(t, d.Close())
		runs := ts.runs.Load()
		if _, err := SubmitRemote(ctx, cli, srv.Addr(), opFor("after/close2", KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second)); errnoOf(err) != wire.ECLOSED {
			t.Fatalf("SUBMIT after Close: %v, want ECLOSED", err)
		}
		st, err := StatusRemote(ctx, cli, srv.Addr(), id)
		if err != nil || st.State != StateDone || st.Done != 2 || st.Failed != 0 {
			t.Fatalf("STATUS after Close: %+v %v", st, err)
		}
		if n := ts.runs.Load(); n != runs {
			t.Fatalf("%d calls ran after Close", n-runs)
		}
	})
}
