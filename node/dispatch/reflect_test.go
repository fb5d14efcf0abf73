package dispatch

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestRemoteSubmitNoReflection: one unauthenticated SUBMIT naming an
// address outside the dispatcher's RemoteTargets many times with a long
// deadline (a reflection attack: the dispatcher would send the victim a
// call and its retransmissions per repeat) is refused, and nothing is
// sent to anyone.
func TestRemoteSubmitNoReflection(t *testing.T) {
	ts := startTargets(t, 1)
	srv := newEP(t, 1, nil)
	d := newDispatcher(t, srv, NewMemStore(0), func(c *Config) { c.RemoteTargets = ts.addrs() })
	victim := rfctest.UDP(t)
	va := victim.LocalAddr().(*net.UDPAddr).AddrPort()
	cli := newEP(t, 0, nil)
	ctx := ctxFor(t, 10*time.Second)
	submit := func(targets []netip.AddrPort, deadline time.Duration) error {
		var p wire.Params
		p.Reset(make([]byte, 1400))
		req := submitRequest{"victim", "read", uint64(callIncr), nil, FormatTargets(targets), int64(deadline / time.Millisecond)}
		req.put(&p)
		if p.Err() != wire.OK {
			t.Fatalf("request: %v", p.Err())
		}
		return cli.Call(ctx, srv.Addr(), CallSubmit, &p, nil)
	}
	var repeated []netip.AddrPort
	for i := 0; i < 50; i++ {
		repeated = append(repeated, va)
	}
	cases := []struct {
		name    string
		targets []netip.AddrPort
		dl      time.Duration
		want    wire.Errno
	}{
		{"victim-repeated", repeated, 30 * time.Second, wire.EINVAL},
		{"victim-once", []netip.AddrPort{va}, time.Second, wire.EPERM},
		{"victim-beside-allowed", []netip.AddrPort{ts.eps[0].Addr(), va}, time.Second, wire.EPERM},
		{"allowed-repeated", []netip.AddrPort{ts.eps[0].Addr(), ts.eps[0].Addr()}, time.Second, wire.EINVAL},
		{"allowed-long-deadline", []netip.AddrPort{ts.eps[0].Addr()}, 30 * time.Second, wire.EINVAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errnoOf(submit(c.targets, c.dl)); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	if st := d.Stats(); st.Sent != 0 || st.Submitted != 0 {
		t.Fatalf("refused submits sent calls: %+v", st)
	}
	// An allowed target, once, within the bounds, is served.
	if err := submit([]netip.AddrPort{ts.eps[0].Addr()}, time.Second); err != nil {
		t.Fatalf("allowed submit: %v", err)
	}
	if !waitFor(5*time.Second, func() bool { return ts.runs.Load() == 1 }) {
		t.Fatalf("allowed target ran %d times", ts.runs.Load())
	}
	// Nothing reached the victim: the one datagram it could have got
	// would have been sent before the allowed operation's.
	victim.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 2048)
	if n, err := victim.Read(buf); err == nil {
		t.Fatalf("victim received %d bytes", n)
	} else if !strings.Contains(err.Error(), "timeout") {
		t.Fatal(err)
	}
}
