package sim

import (
	"context"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/node/registry/agent"
	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/registry/registrytest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/shm"
)

const (
	// regScaleWarm registrations before the measured ones, not
	// measured: the centers' first push to an agent runs with the
	// engine's InitialRTO toward it, before any round-trip sample.
	regScaleWarm = 3
	// regScalePoll is the period at which the maps are read: the
	// resolution of the times measured.
	regScalePoll = 100 * time.Microsecond
	// regScaleBound bounds one registration's wait for every map, in
	// virtual time.
	regScaleBound = 10 * time.Second
)

// regScaleResult is one loss rate's measurement: for each registration the
// virtual time from the start of Register until every agent's map held
// the instance (all), and the same per agent (each).
type regScaleResult struct {
	loss      float64
	all, each []time.Duration
}

// TestScaleRegistryPush measures, in virtual time on the simulated
// network, how long a registered instance takes to reach the shm map of
// every subscribed agent: two centers, -scale.agents agents (each its
// own address and map file) watching "svc/", and -scale.regs
// registrations one after another, alternately at either center, with
// no loss and with 5% loss on every link. With no loss, the p99 of the
// time until every map holds the instance must stay within
// -scale.target; with loss it is reported.
func TestScaleRegistryPush(t *testing.T) {
	n, regs := *flagRegScaleAgents, *flagRegScaleRegs
	if n < 1 || regs < 1 {
		t.Fatalf("-scale.agents and -scale.regs must be at least 1")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	synctest.Test(t, func(t *testing.T) {
		w := startRegScaleWorld(t, n)
		for _, loss := range []float64{0, 0.05} {
			r := w.measure(t, loss, regs)
			all, each := slices.Sorted(slices.Values(r.all)), slices.Sorted(slices.Values(r.each))
			t.Logf("registry push, %d agents, loss %.0f%%: every map holds it p50 %v p99 %v max %v (%d registrations); one map p50 %v p99 %v max %v (%d samples)",
				n, loss*100, regScalePct(all, 0.5), regScalePct(all, 0.99), all[len(all)-1], len(all),
				regScalePct(each, 0.5), regScalePct(each, 0.99), each[len(each)-1], len(each))
			if loss == 0 && *flagRegScaleTarget > 0 && regScalePct(all, 0.99) > *flagRegScaleTarget {
				t.Errorf("no loss: every map holds the instance p99 %v, above %v", regScalePct(all, 0.99), *flagRegScaleTarget)
			}
		}
		for i, c := range w.ctrs {
			st := c.Stats()
			t.Logf("center %d: streams %d, pushes %d, push failures %d, streams dropped %d", i, st.Streams, st.Pushes, st.PushFailures, st.PushDropped)
		}
	})
}

// regScalePct is the q-quantile of sorted durations (nearest rank).
func regScalePct(s []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

type regScaleWorld struct {
	net     *simnet.Network
	dir     string
	centers []netip.AddrPort
	eps     []*rfc.Endpoint
	ctrs    []*center.Center
	ags     []*agent.Agent
	cls     [2]*client.Client // registration i goes first to center i%2
	node    uint32            // the registering node's id
	seq     int               // registrations made
}

// startRegScaleWorld starts two centers, n agents and a registering node,
// with no faults, and waits until every agent's watch is synced.
func startRegScaleWorld(t *testing.T, n int) *regScaleWorld {
	w := &regScaleWorld{net: simnet.New(1, calm(), simnet.NewTrace(0)), dir: t.TempDir(), node: 3}
	t.Cleanup(w.close)
	addr := func(a, b, c byte) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, a, b, c}), 7300)
	}
	open := func(cfg rfc.Config, node uint32, at netip.AddrPort) *rfc.Endpoint {
		cfg.Logger = quietLogger
		ep := openNode(t, w.net, cfg, node, at)
		w.eps = append(w.eps, ep)
		return ep
	}
	w.centers = []netip.AddrPort{addr(3, 0, 1), addr(3, 0, 2)}
	for i := range w.centers {
		ep := open(rfc.DefaultConfig(), uint32(i+1), w.centers[i])
		rc := center.DefaultConfig(filepath.Join(w.dir, "center"+strconv.Itoa(i)))
		rc.Index = uint8(i)
		rc.Peer = w.centers[1-i]
		rc.Logger = quietLogger
		c, err := center.StartCenter(ep, rc)
		if err != nil {
			t.Fatal(err)
		}
		w.ctrs = append(w.ctrs, c)
		startNode(t, ep)
	}
	ep := open(rfc.DefaultConfig(), w.node, addr(3, 0, 3))
	for i := range w.cls {
		cc := client.DefaultClientConfig(w.centers[i], w.centers[1-i])
		c, err := client.NewClient(ep, cc)
		if err != nil {
			t.Fatal(err)
		}
		w.cls[i] = c
	}
	startNode(t, ep)
	// Agents: light endpoints (one worker), each its own address and
	// map file of the smallest size.
	for i := 0; i < n; i++ {
		cfg := rfc.DefaultConfig()
		cfg.Workers = 1
		cfg.QueueLen = 64
		cfg.MaxPending = 64
		cfg.DupEntries = 256
		ep := open(cfg, uint32(1000+i), addr(4, byte(i/250), byte(i%250+1)))
		ac := agent.DefaultAgentConfig(filepath.Join(w.dir, "agent"+strconv.Itoa(i)+".shm"), w.centers...)
		ac.ShmSize = shm.MinSize
		ac.Logger = quietLogger
		a, err := agent.StartAgent(ep, ac)
		if err != nil {
			t.Fatal(err)
		}
		w.ags = append(w.ags, a)
		startNode(t, ep)
	}
	start := time.Now()
	if synced := registrytest.AwaitSynced(w.ags, start.Add(time.Minute)); synced != n {
		t.Fatalf("%d of %d agents synced after %v", synced, n, time.Since(start))
	}
	t.Logf("%d agents synced in %v (virtual)", n, time.Since(start))
	return w
}

// measure makes regScaleWarm + regs registrations with loss on every
// link, and times each until every map holds it.
func (w *regScaleWorld) measure(t *testing.T, loss float64, regs int) regScaleResult {
	f := calm()
	f.Loss = loss
	w.net.SetDefault(f)
	r := regScaleResult{loss: loss}
	for k := 0; k < regScaleWarm+regs; k++ {
		name := "scale-" + strconv.Itoa(w.seq)
		c := w.cls[w.seq%2]
		w.seq++
		key := sdk.ServiceKey(name, w.node)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), regScaleBound)
			defer cancel()
			_, err := c.Register(ctx, name, "10.3.0.3:1", nil, time.Minute)
			done <- err
		}()
		left := registrytest.AwaitKey(w.ags, []byte(key), regScalePoll, start.Add(regScaleBound), func(int) {
			if k >= regScaleWarm {
				r.each = append(r.each, time.Since(start))
			}
		})
		if len(left) > 0 {
			_, ok0 := w.ctrs[0].Entry(key)
			_, ok1 := w.ctrs[1].Entry(key)
			var keys []string
			w.ags[0].Map().Prefix([]byte("svc/"), func(k, v []byte) bool { keys = append(keys, string(k)); return true })
			t.Logf("Register: %v; centers hold it: %v %v; agent 0's map holds %q; its watch %+v",
				<-done, ok0, ok1, keys, w.ags[0].Watch().Stats())
			t.Fatalf("loss %.0f%%: %s not in %d of %d maps after %v", loss*100, key, len(left), len(w.ags), time.Since(start))
		}
		if k >= regScaleWarm {
			r.all = append(r.all, time.Since(start))
		}
		if err := <-done; err != nil {
			t.Fatalf("loss %.0f%%: Register %s: %v", loss*100, name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.net.SetDefault(calm())
	return r
}

// close stops the endpoints first, as a crash would, then the services.
func (w *regScaleWorld) close() {
	for _, ep := range w.eps {
		ep.Close()
	}
	for _, a := range w.ags {
		a.Close()
	}
	for _, c := range w.ctrs {
		c.Close()
	}
	w.net.Close()
}
