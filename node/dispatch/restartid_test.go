package dispatch

import (
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestStatusOfPreviousProcessUnknown: a client submitted an operation
// and the dispatcher restarted on its address before the client asked
// for its status; the new process has accepted an operation of its own.
// Asked for the id the previous process gave, the new one answers ENOENT
// (an id it never issued), not the status of its own operation, which
// the client would take for its own.
func TestStatusOfPreviousProcessUnknown(t *testing.T) {
	ts := startTargets(t, 1)
	cli := newEP(t, 0, nil)
	ep1 := newEP(t, 1, nil)
	addr := ep1.Addr()
	d1 := newDispatcher(t, ep1, NewMemStore(64), func(c *Config) { c.RemoteTargets = ts.addrs() })
	ctx := ctxFor(t, 5*time.Second)
	id1, err := SubmitRemote(ctx, cli, addr, opFor("mine", KindUpdate, workCall(0), ts.addrs(), time.Second))
	if err != nil {
		t.Fatalf("submit to the first process: %v", err)
	}
	d1.Close()
	ep1.Close()

	ep2 := newEP(t, 1, func(c *rfc.Config) { c.Addr = addr.String() })
	d2 := newDispatcher(t, ep2, NewMemStore(64), nil)
	id2, err := d2.Submit(ctx, opFor("theirs", KindUpdate, workCall(0), ts.addrs(), time.Second))
	if err != nil {
		t.Fatalf("submit to the new process: %v", err)
	}
	st, err := StatusRemote(ctx, cli, addr, id1)
	if errnoOf(err) != wire.ENOENT {
		t.Fatalf("status of id %d of the previous process (new op id %d): %q %v, want ENOENT", id1, id2, st.Resource, err)
	}
}
