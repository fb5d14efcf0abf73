package route

import (
	"context"
	"net"
	"testing"
	"time"

	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestReview2OwedDuringNewNotLost: a sub-cluster the table adds while New
// sends its first round of demotions is owed its demotions too. New took
// the owed list, sent the round, then emptied the failover goroutine's
// wake-up signal: the signal of a sub-cluster added during the round was
// thrown away with the list it announced still untaken, and its members
// were never demoted (a member left active beside the one the router
// routes to).
func TestReview2OwedDuringNewNotLost(t *testing.T) {
	ctx := context.Background()
	table := NewMemMounts()
	// c1: a live active member and a silent standby that holds New's
	// round for ActivateTimeout.
	live := NewMember(MemberConfig{Active: true})
	lep := newEndpoint(t, 10, 0)
	if err := live.Register(lep); err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mountC1(t, table, lep.Addr(), conn.LocalAddr().(*net.UDPAddr).AddrPort())
	// c2, added when the silent member hears its demotion: x active, y
	// still active from an earlier run.
	x, y := NewMember(MemberConfig{Active: true}), NewMember(MemberConfig{Active: true})
	xep, yep := newEndpoint(t, 11, 0), newEndpoint(t, 12, 0)
	if err := x.Register(xep); err != nil {
		t.Fatal(err)
	}
	if err := y.Register(yep); err != nil {
		t.Fatal(err)
	}
	added := make(chan error, 1)
	go func() {
		buf := make([]byte, wire.MaxDatagram)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				added <- err
				return
			}
			if n >= wire.HeaderSize && uint16(buf[wire.OffCallNo])<<8|uint16(buf[wire.OffCallNo+1]) == CallSetRole {
				added <- AddCluster(ctx, table, DefaultTablePrefix, "c2", []MemberSpec{{xep.Addr(), RoleActive}, {yep.Addr(), RoleStandby}})
				return
			}
		}
	}()
	cfg := testRouterConfig(t)
	cfg.ActivateTimeout = 500 * time.Millisecond
	startRouter(t, table, cfg)
	select {
	case err := <-added:
		if err != nil {
			t.Fatalf("adding c2: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent member heard no demotion")
	}
	if !rfctest.WaitFor(5*time.Second, func() bool { return !y.Active() }) {
		t.Fatal("c2's standby, added during New's round of demotions, was never demoted")
	}
	if !x.Active() {
		t.Fatal("c2's active member demoted")
	}
}
