package rfc

import (
	"context"
	"testing"

	"fastcall/wire"
)

// TestTransportLeavesBellOff: an endpoint on a Transport takes its first
// incarnation from the transport, and a call with a context that cannot
// be cancelled (the bell's case on a socket) parks on its channel: the
// bell is never opened, so under synctest the caller is durably blocked.
// The network has no delay, so that a caller parked in the poller (the
// fault this test catches) is still woken and the test fails instead of
// waiting for virtual time that cannot move.
func TestTransportLeavesBellOff(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(nil)
		cc := w.attach()
		cli, err := ListenTransport(DefaultConfig(), cc)
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		if cli.Incarnation() != cc.FirstIncarnation() || cli.Addr() != cc.LocalAddr() {
			t.Errorf("incarnation %d addr %v, want the transport's %d %v", cli.Incarnation(), cli.Addr(), cc.FirstIncarnation(), cc.LocalAddr())
		}
		var r Reply
		if err := cli.Call(t.Context(), srv.Addr(), callEchoW, params(func(p *wire.Params) { p.Bytes([]byte("x")) }), &r); err != nil {
			t.Fatal(err)
		}
		if err := cli.Call(context.Background(), srv.Addr(), callEchoW, params(func(p *wire.Params) { p.Bytes([]byte("y")) }), &r); err != nil {
			t.Fatal(err)
		}
		if string(r.Param(0).Bytes()) != "y" {
			t.Errorf("reply %q, want y", r.Param(0).Bytes())
		}
		if cli.bell.raw != nil || cli.bell.waits.Load() != 0 {
			t.Errorf("bell opened (%v) or waited on (%d) on a Transport", cli.bell.raw != nil, cli.bell.waits.Load())
		}
	})
}
