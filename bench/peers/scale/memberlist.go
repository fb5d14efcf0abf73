package main

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberlistCluster is N memberlists (DefaultLANConfig, ProbeInterval and
// ProbeTimeout at the interval and half of it), all joined through the
// first. Each transport counts the UDP packets it sends.
type memberlistCluster struct {
	lists    []*memberlist.Memberlist
	sent     atomic.Uint64
	deaths   atomic.Uint64
	suspects atomic.Uint64
}

// countingTransport counts the packets (UDP) a member sends.
type countingTransport struct {
	memberlist.NodeAwareTransport
	n *atomic.Uint64
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.n.Add(1)
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	t.n.Add(1)
	return t.NodeAwareTransport.WriteToAddress(b, addr)
}

// leaves counts deaths (memberlist reports a dead member as a leave).
type leaves struct{ c *memberlistCluster }

func (l leaves) NotifyJoin(*memberlist.Node)   {}
func (l leaves) NotifyUpdate(*memberlist.Node) {}
func (l leaves) NotifyLeave(*memberlist.Node)  { l.c.deaths.Add(1) }

func startMemberlist(n int, interval time.Duration) (cluster, error) {
	c := &memberlistCluster{}
	var first string
	for i := 0; i < n; i++ {
		cfg := memberlist.DefaultLANConfig()
		cfg.Name = fmt.Sprintf("member-%d", i)
		cfg.BindAddr = "127.0.0.1"
		cfg.BindPort = 0
		cfg.AdvertiseAddr = "127.0.0.1"
		cfg.ProbeInterval = interval
		cfg.ProbeTimeout = interval / 2
		cfg.LogOutput = discard{}
		cfg.Events = leaves{c}
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
		if err != nil {
			c.stop()
			return nil, err
		}
		cfg.Transport = &countingTransport{NodeAwareTransport: nt, n: &c.sent}
		cfg.AdvertisePort = nt.GetAutoBindPort()
		l, err := memberlist.Create(cfg)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.lists = append(c.lists, l)
		if i == 0 {
			first = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(l.LocalNode().Port)))
			continue
		}
		if _, err := l.Join([]string{first}); err != nil {
			c.stop()
			return nil, err
		}
	}
	// Wait (bounded) until every member knows every other.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, l := range c.lists {
			if l.NumMembers() < n {
				ok = false
				break
			}
		}
		if ok {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.deaths.Store(0)
	return c, nil
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func (c *memberlistCluster) counters() (sent, deaths, suspects uint64) {
	return c.sent.Load(), c.deaths.Load(), c.suspects.Load()
}

func (c *memberlistCluster) notAlive() int {
	n := 0
	for _, l := range c.lists {
		alive := 0
		for _, m := range l.Members() {
			if m.State == memberlist.StateAlive {
				alive++
			}
		}
		n += len(c.lists) - alive
	}
	return n
}

func (c *memberlistCluster) stop() {
	for _, l := range c.lists {
		_ = l.Shutdown()
	}
}
