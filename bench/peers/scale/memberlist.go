package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
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
	joined   int    // members whose Join succeeded (the first included)
	note     string // why the cluster is not whole, if it is not
}

// startNote says why the cluster did not come up whole ("" if it did).
func (c *memberlistCluster) startNote() string { return c.note }

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
	t0 := time.Now()
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
		nt, err := netTransport()
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
	}
	// A Join started before joinBound ends when it ends: its push-pull
	// waits for the seed's node lock, which a suspicion storm holds
	// (N=256 at load 4-21: 220 joined by the bound, the last Join
	// returned after 6m44s).
	// The first joinCore members join one after the other, each through
	// joinSeeds of those before it; the rest join through joinSeeds of
	// the core, joinWorkers at a time. Joined one at a time through one
	// member, N=256 did not finish: past about 120 members each Join's
	// push-pull took seconds to tens of seconds (its TCP timeout is 10 s
	// per seed), several minutes in all.
	core := min(n, joinCore)
	rnd := rand.New(rand.NewPCG(uint64(n), 1))
	for i := 1; i < core; i++ {
		if _, err := c.lists[i].Join(seeds(c.lists[:i], rnd)); err != nil {
			c.stop()
			return nil, err
		}
	}
	var wg sync.WaitGroup
	var next, joined, failed atomic.Int64
	next.Store(int64(core))
	joined.Store(int64(core))
	stopAt := time.Now().Add(joinBound)
	for w := 0; w < joinWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(n), uint64(w+2)))
			for time.Now().Before(stopAt) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := c.lists[i].Join(seeds(c.lists[:core], rnd)); err != nil {
					failed.Add(1)
					continue
				}
				joined.Add(1)
			}
		}(w)
	}
	wg.Wait()
	c.joined = int(joined.Load())
	if c.joined < n {
		c.note = fmt.Sprintf("%d of %d members joined within %v (%d Join calls failed)", c.joined, n, joinBound, failed.Load())
		fmt.Fprintf(os.Stderr, "scale: memberlist N=%d: %s\n", n, c.note)
	}
	fmt.Fprintf(os.Stderr, "scale: memberlist N=%d joined in %v\n", n, time.Since(t0).Round(time.Millisecond))
	// Wait (bounded) until every member knows every other.
	deadline := time.Now().Add(joinWait)
	if c.joined < n {
		deadline = time.Now() // some never joined: no member can know all
	}
	least := 0
	for time.Now().Before(deadline) {
		least = n
		for _, l := range c.lists {
			least = min(least, l.NumMembers())
		}
		if least == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.joined == n {
		fmt.Fprintf(os.Stderr, "scale: memberlist N=%d after %v the member knowing fewest knows %d\n", n, time.Since(t0).Round(time.Millisecond), least)
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

// joinBound bounds the joins: members not joined by then are left
// out, and the row says so.
const joinBound = 2 * time.Minute

// joinWait bounds the wait, after the joins, for every member to know
// every other; the run then goes on and the views missing are counted.
const joinWait = 60 * time.Second

// joinCore and joinWorkers shape the join (startMemberlist).
const (
	joinCore    = 32
	joinWorkers = 16
)

// joinSeeds is how many members, chosen at random among those already
// up, a new member joins through (memberlist.Join contacts each).
const joinSeeds = 3

// seeds returns the addresses of up to joinSeeds distinct members of up,
// chosen at random, so that no one member takes every join's push-pull.
func seeds(up []*memberlist.Memberlist, rnd *rand.Rand) []string {
	var out []string
	for _, i := range rnd.Perm(len(up)) {
		if len(out) == joinSeeds {
			break
		}
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(up[i].LocalNode().Port))))
	}
	return out
}

// bindTries bounds the attempts to open a transport (netTransport).
const bindTries = 20

// netTransport opens a memberlist transport on a free loopback port.
// With port 0 memberlist takes a free TCP port and then binds UDP to the
// same number, which fails when that UDP port is taken (256 endpoints of
// the previous run, or their sockets, may still hold UDP ports): it is
// tried again on another port.
func netTransport() (*memberlist.NetTransport, error) {
	var err error
	for range bindTries {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
		if err == nil {
			return nt, nil
		}
	}
	return nil, err
}
