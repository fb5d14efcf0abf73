package client

import (
	"testing"
	"time"

	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestResyncsKeepOneStream: a watch that resyncs more times in a row than
// the center allows streams per address still ends subscribed, holding
// one stream, and still receives pushes. Each resync opens a new stream;
// before, the old one stayed at the center, so a few resyncs in a row
// (a restarted center, lists timing out under load) filled the address's
// bound and every later subscription was refused ENOSPC.
func TestResyncsKeepOneStream(t *testing.T) {
	p := centertest.StartPair(t)
	ep := regtest.Endpoint(t, 300, "127.0.0.1:0")
	cl := newClient(t, ep, p.Addrs()...)
	w, changes := syncedWatch(t, cl, "kv/")
	w.mu.Lock()
	center := w.mu.center
	w.mu.Unlock()
	bound := p.Cs[center].Config().MaxStreamsPerNode
	for i := 0; i < 2*bound; i++ {
		// A resync answers EAGAIN when the watch's own loop resynced
		// meanwhile (its stream id changed under it): that resync still
		// opened a stream, so it counts; try again, boundedly.
		e := w.resync()
		for try := 0; e == wire.EAGAIN && try < 20; try++ {
			e = w.resync()
		}
		if e != wire.OK {
			t.Fatalf("resync %d of %d: %v (center streams %d, refused %d)", i+1, 2*bound, e,
				p.Cs[center].Stats().Streams, p.Cs[center].Stats().SubscribeRefused)
		}
	}
	// An unsubscribe whose attempt timed out on a loaded host may still
	// reach the center a moment later.
	if !rfctest.WaitFor(10*time.Second, func() bool { return p.Cs[center].Stats().Streams == 1 }) {
		t.Fatalf("center holds %d streams after %d resyncs, want 1", p.Cs[center].Stats().Streams, 2*bound)
	}
	if _, err := cl.Put(rfctest.Context(t, 5*time.Second), "a", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-changes:
			if c.Key == "kv/a" {
				return
			}
		case <-deadline:
			t.Fatal("no push for kv/a after the resyncs")
		}
	}
}
