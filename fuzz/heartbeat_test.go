package fuzz

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// Membership update layout (docs/HEARTBEAT.md, "Updates"): u8 state, u32
// incarnation, u32 node id, u32 observer, u16 port, u8 address length (4
// or 16), then the address.
const (
	hbUpdHead    = 16
	hbUpdAddrLen = 15
	hbStates     = 3 // alive, suspect, dead
	hbMaxMembers = 64
	// hbMaxUpdates bounds the updates parameter so the request fits the
	// default datagram.
	hbMaxUpdates = 1200
)

// hbUpdate encodes one update per the specification.
func hbUpdate(state byte, inc, node, from uint32, a netip.AddrPort) []byte {
	b := []byte{state}
	b = binary.BigEndian.AppendUint32(b, inc)
	b = binary.BigEndian.AppendUint32(b, node)
	b = binary.BigEndian.AppendUint32(b, from)
	b = binary.BigEndian.AppendUint16(b, a.Port())
	if a.Addr().Is4() {
		v := a.Addr().As4()
		return append(append(b, 4), v[:]...)
	}
	v := a.Addr().As16()
	return append(append(b, 16), v[:]...)
}

// hbWellFormed returns how many updates at the start of b are well formed
// and whether a malformed one follows them.
func hbWellFormed(b []byte) (n int, bad bool) {
	for len(b) > 0 {
		if len(b) < hbUpdHead || b[0] >= hbStates {
			return n, true
		}
		l := int(b[hbUpdAddrLen])
		if (l != 4 && l != 16) || len(b) < hbUpdHead+l {
			return n, true
		}
		b = b[hbUpdHead+l:]
		n++
	}
	return n, false
}

// FuzzHeartbeatUpdates: any updates parameter, and any view of the
// receiver, in a heartbeat from a member of a running heartbeat service:
// the service answers, counts every well-formed update before the first
// malformed one as heard and a malformed one as bad, keeps its
// member list within MaxMembers, and its incarnation never falls. Each
// input is a loopback round trip: minimizing a new input takes up to
// -fuzzminimizetime (60 s by default), during which the fuzzer reports
// no executions.
func FuzzHeartbeatUpdates(f *testing.F) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	xep := rfctest.Listen(f, 1, nil)
	mep := rfctest.Listen(f, 2, nil)
	other := netip.MustParseAddrPort("127.0.0.9:7000")
	cfg := heartbeat.DefaultConfig().WithInterval(time.Second)
	cfg.Logger = quiet
	// No joins: an alive update about an unknown address would add it,
	// and the service would probe whatever address the input names.
	cfg.AcceptJoins = false
	cfg.MaxMembers = hbMaxMembers
	x, err := heartbeat.Start(xep, cfg, []netip.AddrPort{mep.Addr(), other})
	if err != nil {
		f.Fatalf("Start: %v", err)
	}
	f.Cleanup(x.Close)
	m, err := heartbeat.Start(mep, cfg, []netip.AddrPort{xep.Addr()})
	if err != nil {
		f.Fatalf("Start: %v", err)
	}
	f.Cleanup(m.Close)

	self, v6 := xep.Addr(), netip.MustParseAddrPort("[::1]:7001")
	for st := byte(0); st < hbStates; st++ {
		for _, a := range []netip.AddrPort{self, mep.Addr(), other, v6, netip.MustParseAddrPort("127.0.0.10:1")} {
			for _, inc := range []uint32{0, 1, xep.Incarnation(), ^uint32(0)} {
				f.Add(hbUpdate(st, inc, 0, 7, a), uint8(0), uint32(0), uint32(0))
				f.Add(hbUpdate(st, inc, 1, 0, a), uint8(st), inc, inc)
			}
		}
	}
	two := append(hbUpdate(1, 5, 3, 2, other), hbUpdate(2, 5, 3, 2, other)...)
	f.Add(two, uint8(2), ^uint32(0), uint32(0))
	f.Add(append(two, 0, 1, 2), uint8(1), uint32(0), uint32(0))
	f.Add(append(hbUpdate(0, 9, 0, 0, v6)[:hbUpdHead], 16, 1), uint8(0), uint32(0), uint32(0))
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1}, uint8(9), uint32(1), uint32(1))

	buf := make([]byte, mep.Config().MaxDatagram)
	var ps wire.Params
	f.Fuzz(func(t *testing.T, upd []byte, state uint8, inc, died uint32) {
		if len(upd) > hbMaxUpdates {
			upd = upd[:hbMaxUpdates]
		}
		st0, inc0 := x.Stats(), xep.Incarnation()
		ps.Reset(buf)
		ps.Uint64(uint64(mep.Incarnation()))
		ps.Uint64(uint64(state))
		ps.Uint64(uint64(inc))
		ps.Uint64(uint64(died))
		ps.Bytes(upd)
		ctx := rfctest.Context(t, 10*time.Second)
		var rep rfc.Reply
		err := mep.Call(ctx, xep.Addr(), heartbeat.CallHeartbeat, &ps, &rep)
		if state >= hbStates {
			// A view state that is none of the states is refused, not
			// read cut (docs/HEARTBEAT.md).
			if !errors.Is(err, wire.EINVAL) {
				t.Fatalf("heartbeat with view state %d: %v, want EINVAL", state, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("heartbeat with %d bytes of updates: %v", len(upd), err)
		}
		st := x.Stats()
		n, bad := hbWellFormed(upd)
		// Other heartbeats may land meanwhile (m's service, or a late
		// retransmission of an earlier input: heartbeats are idempotent,
		// answered anew): the counts rise at least by this input's.
		if st.UpdatesHeard < st0.UpdatesHeard+uint64(n) {
			t.Errorf("%d well-formed updates, %d heard", n, st.UpdatesHeard-st0.UpdatesHeard)
		}
		if bad && st.BadUpdates < st0.BadUpdates+1 {
			t.Errorf("malformed update after %d not counted bad", n)
		}
		if k := len(x.Members()); k > hbMaxMembers {
			t.Errorf("%d members, bound %d", k, hbMaxMembers)
		}
		if now := xep.Incarnation(); now < inc0 {
			t.Errorf("incarnation fell from %d to %d", inc0, now)
		}
	})
}
