package rfc

import (
	"net/netip"
	"testing"
)

// TestReviewSweepKeepsPeerJustTaken: a call takes its peer entry
// (peers.get) before it parks, and the sweep finds the calls parked on a
// peer by scanning the pending slots first. A sweep that runs in between
// found no call on an idle entry and removed it, so the call parked on an
// entry no longer in the table: MarkDead of the address (a new entry)
// then failed nothing, and what the reply taught was lost. An entry just
// taken is not idle.
func TestReviewSweepKeepsPeerJustTaken(t *testing.T) {
	cli := newTestEndpoint(t, nil)
	dst := netip.MustParseAddrPort("127.0.0.1:9")
	old := cli.Now() - 2*int64(cli.cfg.DupAge)
	p := cli.peers.get(dst)
	cli.peers.mu.Lock()
	p.lastHeard.Store(old)
	p.created = old
	p.taken.Store(old)
	cli.peers.mu.Unlock()
	// A call to dst takes the entry; a sweep runs before it parks. (The
	// timer goroutine's own sweep may remove the aged entry first: then
	// get makes another, and the test says nothing.)
	if got := cli.peers.get(dst); got != p {
		t.Skip("the timer goroutine swept the aged entry first")
	}
	cli.sweepPeers(cli.Now())
	if cli.peers.lookup(dst) != p {
		t.Fatal("the sweep removed the entry a call had just taken")
	}
}
