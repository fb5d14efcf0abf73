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
