package center

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
)

// TestAgentDeregisterNotUndone: a service the application deregisters
// while the agent registers its services again (the centers lost them)
// stays deregistered. The agent's renewal found none of its eight
// instances (their leases ran out while it was cut off), and registered
// again, one after the other, every service it held when the renewal
// began; services deregistered meanwhile were registered again after
// their deregistration, live in the registry and pushed to every map.
func TestAgentDeregisterNotUndone(t *testing.T) { rfctest.InSim(t, agentDeregisterNotUndone) }

func agentDeregisterNotUndone(t *testing.T, s *rfctest.Sim) {
	p := startSimPair(t, s, nil)
	ep := s.Listen(10, nil)
	a := startAgent(t, ep, filepath.Join(t.TempDir(), "node.map"), p.Addrs(), nil)
	const lease = 3 * time.Second
	const n = 8
	ctx := rfctest.Context(t, 10*time.Second)
	for i := 0; i < n; i++ {
		if err := a.Register(ctx, fmt.Sprintf("svc%d", i), fmt.Sprintf("127.0.0.1:%d", 7000+i), nil, lease); err != nil {
			t.Fatal(err)
		}
	}
	// Cut the node off until its leases ran out at both centers, then
	// let it back with a delay on its links, so that each registration
	// takes a while.
	for _, c := range p.Addrs() {
		s.Net.Cut(ep.Addr(), c)
		s.Net.Cut(c, ep.Addr())
	}
	live := func(i int) bool {
		rec, ok := p.Cs[0].Entry(sdk.ServiceKey(fmt.Sprintf("svc%d", i), 10))
		return ok && sdk.RecordKind(rec) == sdk.KindService
	}
	if !rfctest.WaitFor(3*lease, func() bool {
		for i := 0; i < n; i++ {
			if live(i) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("leases did not run out")
	}
	slow := simnet.Faults{Delay: simnet.Dist{Base: 5 * time.Millisecond}}
	for _, c := range p.Addrs() {
		s.Net.Heal(ep.Addr(), c)
		s.Net.Heal(c, ep.Addr())
		s.Net.SetFaults(ep.Addr(), c, slow)
		s.Net.SetFaults(c, ep.Addr(), slow)
	}
	// The first service registered again starts the agent's round:
	// deregister every service not yet back.
	first := -1
	if !rfctest.WaitFor(2*lease, func() bool {
		for i := 0; i < n; i++ {
			if live(i) {
				first = i
				return true
			}
		}
		return false
	}) {
		t.Fatal("the agent did not register again")
	}
	done := make(chan error, n)
	for i := 0; i < n; i++ {
		if i == first {
			continue
		}
		go func() { done <- a.Deregister(context.Background(), fmt.Sprintf("svc%d", i)) }()
	}
	for i := 0; i < n-1; i++ {
		<-done // ENOENT or nil: either way the service is deregistered
	}
	time.Sleep(time.Second) // the agent's round ends
	var back []int
	for i := 0; i < n; i++ {
		if i != first && live(i) {
			back = append(back, i)
		}
	}
	if len(back) > 0 {
		t.Errorf("services %v registered again after their deregistration", back)
	}
	if !live(first) {
		t.Errorf("service %d not registered", first)
	}
}
