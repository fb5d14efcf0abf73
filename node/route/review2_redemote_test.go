package route

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/wire"
)

// TestReview2RedemoteRoundDoesNotStallFailover: members that never answer
// their owed demotion (listed but down) do not hold up the failover of
// another sub-cluster. The failover goroutine sent a round of demotions
// one after another, each waited up to ActivateTimeout, so a round cost
// ActivateTimeout per silent member and every failover queued meanwhile
// waited for it: a call whose active member had died ended ETIMEDOUT at
// its client's deadline instead of reaching the standby (and New waited
// as long for the first round).
func TestReview2RedemoteRoundDoesNotStallFailover(t *testing.T) {
	const silentN = 21 // three sub-clusters of one live member and 7 silent ones
	table := NewMemMounts()
	ctx := context.Background()
	// Silent members read their requests and never answer; every first
	// transmission of a set-role request is reported on sent.
	sent := make(chan struct{}, 1024)
	var silent []netip.AddrPort
	for i := 0; i < silentN; i++ {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		silent = append(silent, conn.LocalAddr().(*net.UDPAddr).AddrPort())
		go func() {
			buf := make([]byte, wire.MaxDatagram)
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				if n >= wire.HeaderSize && buf[wire.OffFlags]&wire.FlagRetrans == 0 &&
					uint16(buf[wire.OffCallNo])<<8|uint16(buf[wire.OffCallNo+1]) == CallSetRole {
					select {
					case sent <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	live := NewMember(MemberConfig{Active: true})
	lep := newEndpoint(t, 10, 0)
	if err := live.Register(lep); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 3; c++ {
		specs := []MemberSpec{{lep.Addr(), RoleActive}}
		for _, a := range silent[c*silentN/3 : (c+1)*silentN/3] {
			specs = append(specs, MemberSpec{a, RoleStandby})
		}
		name := fmt.Sprintf("down%d", c)
		if err := AddCluster(ctx, table, DefaultTablePrefix, name, specs); err != nil {
			t.Fatal(err)
		}
	}
	// cx: A active, B and C standby; A dies below.
	var specs []MemberSpec
	mA := newEndpoint(t, 11, 0)
	for i := 0; i < 3; i++ {
		m := NewMember(MemberConfig{Active: i == 0})
		ep := mA
		if i > 0 {
			ep = newEndpoint(t, uint32(11+i), 0)
		}
		if err := m.Register(ep); err != nil {
			t.Fatal(err)
		}
		role := RoleStandby
		if i == 0 {
			role = RoleActive
		}
		specs = append(specs, MemberSpec{ep.Addr(), role})
	}
	if err := AddCluster(ctx, table, DefaultTablePrefix, "cx", specs); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, table, DefaultTablePrefix, "/cx", "cx"); err != nil {
		t.Fatal(err)
	}
	cfg := testRouterConfig(t)
	cfg.ForwardTimeout = 400 * time.Millisecond
	cfg.ActivateTimeout = 200 * time.Millisecond
	cfg.ProbeTimeout = 100 * time.Millisecond
	r, rep := startRouter(t, table, cfg)
	tc := &testCluster{router: r, rep: rep, client: newEndpoint(t, 100, 0)}
	if _, err := tc.get(t, "/cx/k"); err != wire.ENOENT {
		t.Fatalf("get before the death: %v", err)
	}
	// Wait for the failover goroutine's next round of demotions: a first
	// transmission after New returned (New's own round ended before).
	for len(sent) > 0 {
		<-sent
	}
	select {
	case <-sent:
	case <-time.After(20 * time.Second):
		t.Fatal("no round of demotions")
	}
	mA.Close()
	// One round of the silent members one after another takes 4.2 s;
	// the call may take the router's bound for cx, 1.9 s.
	var ps wire.Params
	ps.Reset(make([]byte, 1300))
	ps.String("/cx/k")
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := tc.client.Call(cctx, rep.Addr(), CallNSGet, &ps, nil); err != wire.ENOENT {
		t.Fatalf("get after the active member's death, during a round of demotions: %v (want the standby's ENOENT)", err)
	}
}
