package dispatch

import (
	"testing"
	"time"

	"fastcall/wire"
)

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
