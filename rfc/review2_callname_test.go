package rfc

import (
	"testing"
	"time"

	"fastcall/wire"
)

// TestReview2StatsWithNonUTF8Name: a call registered under a name that is
// not UTF-8 does not make the CallCalls and CallStats pages undecodable.
// The pages carried the name as a str parameter as given, so every
// client's decoder refused the whole page (ReasonUTF8) and rfcctl calls
// and stats failed for the node.
func TestReview2StatsWithNonUTF8Name(t *testing.T) {
	srv := newTestServer(t, nil)
	no := uint16(wire.CallUserBase + 0x101)
	if err := srv.Register(no, "bad\xffname", nil, Idempotent, func(*Request, *wire.Params) wire.Errno { return wire.OK }); err != nil {
		t.Fatal(err)
	}
	cli := newTestEndpoint(t, nil)
	if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), no, nil, nil); err != nil {
		t.Fatalf("call: %v", err)
	}
	for _, callNo := range []uint16{CallCalls, CallStats} {
		var rep Reply
		found := false
		cursor := uint64(0)
		for pages := 0; pages < 100; pages++ {
			err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), callNo, params(func(p *wire.Params) { p.Uint64(cursor); p.Bytes(make([]byte, 500)) }), &rep)
			if err != nil {
				t.Fatalf("call %#x page %d: %v", callNo, pages, err)
			}
			stride := callsEntryParams
			if callNo == CallStats {
				stride = statsEntryParams
			}
			for i := 1; i+1 < rep.NParams(); i += stride {
				if uint16(rep.Param(i).Uint64()) == no {
					found = true
				}
			}
			if cursor = rep.Param(0).Uint64(); cursor == 0 {
				break
			}
		}
		if !found {
			t.Fatalf("call %#x: the call is not listed", callNo)
		}
	}
}
