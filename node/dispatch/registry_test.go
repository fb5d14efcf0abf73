package dispatch

import (
	"testing"
	"time"

	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/rfc"
	"fastcall/wire"
)

// TestRegistryStore runs dispatchers on two nodes with their markers in a
// pair of real registry centers: a conflicting operation from the other
// node is refused, the marker is replicated to both centers and gone once
// the operation ends.
func TestRegistryStore(t *testing.T) {
	var eps [2]*registryCenter
	for i := range eps {
		eps[i] = &registryCenter{ep: newEP(t, uint32(100+i), nil), dir: t.TempDir()}
	}
	for i, c := range eps {
		cfg := center.DefaultConfig(c.dir)
		cfg.Index = uint8(i)
		cfg.Peer = eps[1-i].ep.Addr()
		cfg.Logger = quiet
		cfg.SweepEvery = 10 * time.Millisecond
		center, err := center.StartCenter(c.ep, cfg)
		if err != nil {
			t.Fatalf("StartCenter: %v", err)
		}
		t.Cleanup(func() { center.Close() })
		c.center = center
	}
	newStore := func(node uint32) (*Dispatcher, *RegistryStore) {
		ep := newEP(t, node, nil)
		ccfg := client.DefaultClientConfig(eps[0].ep.Addr(), eps[1].ep.Addr())
		cl, err := client.NewClient(ep, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		s := NewRegistryStore(cl)
		return newDispatcher(t, ep, s, nil), s
	}
	d1, s1 := newStore(7)
	d2, _ := newStore(8)
	ts := startTargets(t, 4)
	ctx := ctxFor(t, 10*time.Second)

	id, err := d1.Submit(ctx, opFor("reg/r", KindDelete, workCall(200), ts.addrs(), 3*time.Second))
	if err != nil {
		t.Fatalf("d1: %v", err)
	}
	if _, err := d2.Submit(ctx, opFor("reg/r", KindRead, workCall(1), ts.addrs(), time.Second)); errnoOf(err) != wire.ECONFLICT {
		t.Fatalf("d2 during d1's delete: %v", err)
	}
	for _, c := range eps {
		if rec, ok := c.center.Entry("kv/" + DefaultKeyPrefix + "reg/r"); !ok || len(rec) == 0 {
			t.Fatal("marker not on both centers")
		}
	}
	st, err := d1.Wait(ctx, id)
	if err != nil || st.Failed != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if _, _, err := s1.Get(ctx, DefaultKeyPrefix+"reg/r"); errnoOf(err) != wire.ENOENT {
		t.Fatalf("marker after the operation: %v", err)
	}
	id2, err := d2.Submit(ctx, opFor("reg/r", KindRead, workCall(1), ts.addrs(), time.Second))
	if err != nil {
		t.Fatalf("d2 after d1: %v", err)
	}
	if _, err := d2.Wait(ctx, id2); err != nil {
		t.Fatal(err)
	}
}

type registryCenter struct {
	ep     *rfc.Endpoint
	dir    string
	center *center.Center
}
