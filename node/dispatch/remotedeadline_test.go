package dispatch

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestSubmitRemoteDeadlineRounding: a CallSubmit carries the deadline in
// whole milliseconds and the dispatcher reads 0 as its default deadline.
// SubmitRemote rounds a deadline up, so that one below a millisecond is
// sent as 1 ms, not as 0 (which would run the operation for the
// dispatcher's default, seconds longer than the caller asked).
func TestSubmitRemoteDeadlineRounding(t *testing.T) {
	srv := newEP(t, 1, nil)
	got := make(chan int64, 1)
	must(t, srv.Register(CallSubmit, "dispatch-submit", schemaSubmit, 0, func(r *rfc.Request, rep *wire.Params) wire.Errno {
		got <- r.Param(subParamDeadline).Int64()
		rep.Uint64(1)
		return wire.OK
	}))
	cli := newEP(t, 0, nil)
	target := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {time.Nanosecond, 1}, {500 * time.Microsecond, 1}, {time.Millisecond, 1}, {1500 * time.Microsecond, 2}, {3 * time.Second, 3000},
	} {
		t.Run(fmt.Sprint(tc.d), func(t *testing.T) {
			ctx := ctxFor(t, 5*time.Second)
			if _, err := SubmitRemote(ctx, cli, srv.Addr(), opFor("r", KindRead, Call{No: callIncr}, target, tc.d)); err != nil {
				t.Fatalf("SubmitRemote: %v", err)
			}
			if ms := <-got; ms != tc.want {
				t.Fatalf("deadline %v sent as %d ms, want %d", tc.d, ms, tc.want)
			}
		})
	}
}
