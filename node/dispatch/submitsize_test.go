package dispatch

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestSubmitSize: SubmitSize is the bound SubmitRemote applies. Across
// target counts on both sides of the datagram limit, SubmitRemote refuses
// the op with EMSGSIZE exactly when SubmitSize is past MaxDatagram (the
// others are sent, and end on the cancelled context).
func TestSubmitSize(t *testing.T) {
	ep := newEP(t, 1, nil)
	maxDg := ep.Config().MaxDatagram
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fits, past := 0, 0
	for n := 1; n <= 120; n++ {
		op := &Op{Resource: "r", Kind: KindUpdate, Call: Call{No: rfc.CallPing}}
		for i := 0; i < n; i++ {
			op.Targets = append(op.Targets, Target{Addr: netip.MustParseAddrPort(fmt.Sprintf("10.0.0.1:%d", 10000+i))})
		}
		_, err := SubmitRemote(ctx, ep, netip.MustParseAddrPort("127.0.0.1:9"), op)
		over := SubmitSize(op) > maxDg
		if (wire.AsErrno(err) == wire.EMSGSIZE) != over {
			t.Fatalf("%d targets: SubmitSize %d, MaxDatagram %d, SubmitRemote %v", n, SubmitSize(op), maxDg, err)
		}
		if over {
			past++
		} else {
			fits++
		}
	}
	if fits == 0 || past == 0 {
		t.Fatalf("%d target counts fit, %d did not: the range misses the bound", fits, past)
	}
}
