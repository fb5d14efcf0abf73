package main

import (
	"fmt"
	"io"
	"math/rand"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberlistSystem is hashicorp/memberlist with DefaultLANConfig and the
// probe interval (and the probe timeout at the same ratio, interval/2)
// set to the interval under test.
type memberlistSystem struct {
	lists []*memberlist.Memberlist
	ev    *deathWatch

	mu     sync.Mutex
	victim string
}

func (m *memberlistSystem) name() string { return "memberlist" }

// deathWatch records NotifyLeave (memberlist reports a dead member as a
// leave).
type deathWatch struct {
	mu     sync.Mutex
	target string
	at     time.Time
	deaths int
	dead   chan struct{}
}

func (d *deathWatch) NotifyJoin(*memberlist.Node)   {}
func (d *deathWatch) NotifyUpdate(*memberlist.Node) {}
func (d *deathWatch) NotifyLeave(n *memberlist.Node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deaths++
	if n.Name == d.target && d.at.IsZero() {
		d.at = time.Now()
		close(d.dead)
	}
}

func mlConfig(name string, interval time.Duration) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.AdvertiseAddr = "127.0.0.1"
	c.ProbeInterval = interval
	c.ProbeTimeout = interval / 2
	c.LogOutput = io.Discard
	return c
}

func (m *memberlistSystem) start(interval time.Duration) ([]string, error) {
	m.ev = &deathWatch{dead: make(chan struct{})}
	var peers []string
	for i := 0; i < 2; i++ {
		c := mlConfig(fmt.Sprintf("member-%d", i), interval)
		if i == 0 {
			c.Events = m.ev
		}
		l, err := memberlist.Create(c)
		if err != nil {
			return nil, err
		}
		m.lists = append(m.lists, l)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(l.LocalNode().Port)))
		peers = append(peers, addr)
	}
	if _, err := m.lists[1].Join(peers[:1]); err != nil {
		return nil, err
	}
	return peers, nil
}

func (m *memberlistSystem) join(name string) error {
	m.mu.Lock()
	m.victim = name
	m.mu.Unlock()
	m.ev.mu.Lock()
	m.ev.target = name
	m.ev.mu.Unlock()
	return nil // the victim joins by itself
}

func (m *memberlistSystem) victimAlive() bool {
	for _, n := range m.lists[0].Members() {
		if n.Name == m.victim && n.State == memberlist.StateAlive {
			return true
		}
	}
	return false
}

func (m *memberlistSystem) waitDead(limit time.Duration) (time.Time, bool) {
	select {
	case <-m.ev.dead:
		m.ev.mu.Lock()
		defer m.ev.mu.Unlock()
		return m.ev.at, true
	case <-time.After(limit):
		return time.Time{}, false
	}
}

func (m *memberlistSystem) stop() {
	for _, l := range m.lists {
		_ = l.Shutdown()
	}
}

func memberlistVictim(peers []string, interval time.Duration) (string, error) {
	name := "victim"
	l, err := memberlist.Create(mlConfig(name, interval))
	if err != nil {
		return "", err
	}
	if _, err := l.Join(peers); err != nil {
		return "", err
	}
	return name, nil
}

// lossyTransport drops a fraction of the UDP packets exchanged with one
// peer, both ways. Streams (TCP) are left alone.
type lossyTransport struct {
	memberlist.Transport
	peer string // "host:port" of the peer across the lossy link
	loss float64
	mu   sync.Mutex
	rng  *rand.Rand
	in   chan *memberlist.Packet
}

func (t *lossyTransport) drop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rng.Float64() < t.loss
}

func (t *lossyTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if addr == t.peer && t.drop() {
		return time.Now(), nil
	}
	return t.Transport.WriteTo(b, addr)
}

func (t *lossyTransport) PacketCh() <-chan *memberlist.Packet { return t.in }

func (t *lossyTransport) pump() {
	for p := range t.Transport.PacketCh() {
		if p.From.String() == t.peer && t.drop() {
			continue
		}
		t.in <- p
	}
	close(t.in)
}

func lossyRunMemberlist(m *memberlistSystem, interval, run time.Duration, loss float64) (int, error) {
	m.ev = &deathWatch{dead: make(chan struct{})}
	// Fixed ports so each lossy transport knows its peer's address.
	base := 30000 + rand.Intn(20000)
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)) }
	watches := make([]*deathWatch, 3)
	for i := 0; i < 3; i++ {
		c := mlConfig(fmt.Sprintf("member-%d", i), interval)
		c.BindPort = base + i
		c.AdvertisePort = base + i
		watches[i] = &deathWatch{dead: make(chan struct{})}
		c.Events = watches[i]
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: base + i, Logger: nil,
		})
		if err != nil {
			return 0, err
		}
		if i < 2 {
			lt := &lossyTransport{Transport: nt, peer: addr(1 - i), loss: loss,
				rng: rand.New(rand.NewSource(int64(i + 1))), in: make(chan *memberlist.Packet, 1024)}
			go lt.pump()
			c.Transport = lt
		} else {
			c.Transport = nt
		}
		l, err := memberlist.Create(c)
		if err != nil {
			return 0, err
		}
		m.lists = append(m.lists, l)
	}
	if _, err := m.lists[2].Join([]string{addr(0), addr(1)}); err != nil {
		return 0, err
	}
	time.Sleep(run)
	n := 0
	for _, w := range watches {
		w.mu.Lock()
		n += w.deaths
		w.mu.Unlock()
	}
	return n, nil
}

func lossyRun(s system, interval, run time.Duration, loss float64) (int, error) {
	defer s.stop()
	switch s := s.(type) {
	case *fastcallSystem:
		return lossyRunFastcall(s, interval, run, loss)
	case *memberlistSystem:
		return lossyRunMemberlist(s, interval, run, loss)
	}
	return 0, fmt.Errorf("unknown system")
}
