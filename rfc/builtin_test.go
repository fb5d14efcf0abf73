package rfc

import (
	"errors"
	"testing"
	"time"

	"fastcall/wire"
)

// TestStatsPageTooSmall: a stats page with room for no entry is answered
// EMSGSIZE, not with an empty page whose next cursor sends the client
// back to the same place.
func TestStatsPageTooSmall(t *testing.T) {
	srv := newTestEndpoint(t, func(c *Config) { c.MaxDatagram = 200 })
	cli := newTestEndpoint(t, nil)
	if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
		t.Fatal(err)
	}
	var rep Reply
	err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallStats, params(func(p *wire.Params) { p.Uint64(0); p.Bytes(nil) }), &rep)
	if !errors.Is(err, wire.EMSGSIZE) {
		t.Fatalf("stats on a 200-byte endpoint: %v (%d params), want EMSGSIZE", err, rep.NParams())
	}
}

// TestEngineStatsOrder: the drop counters of engine-stats come in name
// order after the fixed counters.
func TestEngineStatsOrder(t *testing.T) {
	srv := newTestEndpoint(t, nil)
	srv.stats.drops[wire.ReasonMagic].Add(1)
	srv.stats.drops[wire.ReasonShort].Add(1)
	srv.stats.tooOld.Add(1)
	srv.stats.wrongDst.Add(1)
	cli := newTestEndpoint(t, nil)
	var rep Reply
	for try := 0; try < 5; try++ {
		if err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), CallEngineStats, params(func(p *wire.Params) { p.Bytes(make([]byte, 420)) }), &rep); err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := 0; i+1 < rep.NParams(); i += 2 {
			if n := rep.Param(i).Str(); len(n) > 5 && n[:5] == "drop-" {
				names = append(names, n)
			}
		}
		want := []string{"drop-magic", "drop-short", "drop-too-old", "drop-wrong-dst"}
		if len(names) != len(want) {
			t.Fatalf("drops %v, want %v", names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("drops %v, want %v", names, want)
			}
		}
	}
}
