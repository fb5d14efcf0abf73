package main

import (
	"net/netip"
	"sync"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
)

// fastcallSystem is node/heartbeat with DefaultConfig().WithInterval.
type fastcallSystem struct {
	eps    []*rfc.Endpoint
	svcs   []*heartbeat.Service
	relays []*simnet.Relay
	victim netip.AddrPort

	mu     sync.Mutex
	deadAt time.Time
	deaths int
	dead   chan struct{}
}

func (f *fastcallSystem) name() string { return "fastcall" }

func hbConfig(interval time.Duration) heartbeat.Config {
	c := heartbeat.DefaultConfig().WithInterval(interval)
	c.Logger = quiet
	return c
}

func listen(node uint32) (*rfc.Endpoint, error) {
	c := rfc.DefaultConfig()
	c.NodeID = node
	c.Logger = quiet
	return rfc.Listen(c)
}

func (f *fastcallSystem) start(interval time.Duration) ([]string, error) {
	f.dead = make(chan struct{})
	for i := 0; i < 2; i++ {
		ep, err := listen(uint32(i + 1))
		if err != nil {
			return nil, err
		}
		f.eps = append(f.eps, ep)
	}
	var peers []string
	for i, ep := range f.eps {
		svc, err := heartbeat.Start(ep, hbConfig(interval), []netip.AddrPort{f.eps[1-i].Addr()})
		if err != nil {
			return nil, err
		}
		f.svcs = append(f.svcs, svc)
		peers = append(peers, ep.Addr().String())
	}
	f.svcs[0].OnEvent(func(ev heartbeat.Event) {
		if ev.Kind == heartbeat.EventDead && ev.Addr == f.victim {
			f.mu.Lock()
			if f.deadAt.IsZero() {
				f.deadAt = time.Now()
				close(f.dead)
			}
			f.mu.Unlock()
		}
	})
	return peers, nil
}

func (f *fastcallSystem) join(addr string) error {
	a, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.victim = a
	f.mu.Unlock()
	for _, s := range f.svcs {
		if err := s.AddMember(a); err != nil {
			return err
		}
	}
	return nil
}

func (f *fastcallSystem) victimAlive() bool {
	info, ok := f.svcs[0].Member(f.victim)
	return ok && info.State == heartbeat.StateAlive && info.Node != 0
}

func (f *fastcallSystem) waitDead(limit time.Duration) (time.Time, bool) {
	select {
	case <-f.dead:
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.deadAt, true
	case <-time.After(limit):
		return time.Time{}, false
	}
}

func (f *fastcallSystem) stop() {
	for _, s := range f.svcs {
		s.Close()
	}
	for _, ep := range f.eps {
		ep.Close()
	}
	for _, r := range f.relays {
		r.Close()
	}
}

func fastcallVictim(peers []string, interval time.Duration) (string, error) {
	ep, err := listen(3)
	if err != nil {
		return "", err
	}
	var ms []netip.AddrPort
	for _, p := range peers {
		a, err := netip.ParseAddrPort(p)
		if err != nil {
			return "", err
		}
		ms = append(ms, a)
	}
	if _, err := heartbeat.Start(ep, hbConfig(interval), ms); err != nil {
		return "", err
	}
	return ep.Addr().String(), nil
}

// lossyRun: members A, B, C in this process; A and B reach each other
// through simnet relays that lose the given fraction each way.
func lossyRunFastcall(f *fastcallSystem, interval, run time.Duration, loss float64) (int, error) {
	for i := 0; i < 3; i++ {
		ep, err := listen(uint32(i + 1))
		if err != nil {
			return 0, err
		}
		f.eps = append(f.eps, ep)
	}
	a, b, c := f.eps[0], f.eps[1], f.eps[2]
	toB, err := simnet.NewRelay(b.Addr(), simnet.RelayConfig{Faults: simnet.Faults{Loss: loss}, Seed: uint64(1)})
	if err != nil {
		return 0, err
	}
	toA, err := simnet.NewRelay(a.Addr(), simnet.RelayConfig{Faults: simnet.Faults{Loss: loss}, Seed: uint64(2)})
	if err != nil {
		return 0, err
	}
	f.relays = append(f.relays, toB, toA)
	members := [][]netip.AddrPort{
		{toB.Addr(), c.Addr()},
		{toA.Addr(), c.Addr()},
		{a.Addr(), b.Addr()},
	}
	for i, ep := range f.eps {
		svc, err := heartbeat.Start(ep, hbConfig(interval), members[i])
		if err != nil {
			return 0, err
		}
		f.svcs = append(f.svcs, svc)
	}
	time.Sleep(run)
	n := 0
	for _, s := range f.svcs {
		n += int(s.Stats().Deaths)
	}
	return n, nil
}
