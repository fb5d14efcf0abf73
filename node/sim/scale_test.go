package sim

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// TestSimScale measures node/heartbeat at cluster size on the simulated
// network, in virtual time: N members (heartbeat.DefaultConfig, 200ms
// interval) that know each other, then
//
//   - a steady phase at 5% loss on every link: false deaths (any death,
//     since nobody fails) and datagrams each member sends per interval;
//   - crashes, one at a time, at 5% loss: the time from the crash to each
//     other member's EventDead (detection by every member);
//   - refutations, one at a time: a live member told that it is suspect
//     raises its incarnation; the time until each other member holds the
//     new incarnation (dissemination of a change to all).
//
// It runs only when FASTCALL_SIM_SCALE lists the sizes (for example
// FASTCALL_SIM_SCALE=100,300,1000), not in make test: a size of 1,000
// takes minutes. The figures are logged (run with -v); docs/HEARTBEAT.md
// ("Measured") has the command. Invariant: no death of a member that did
// not crash.
func TestSimScale(t *testing.T) {
	spec := os.Getenv("FASTCALL_SIM_SCALE")
	if spec == "" {
		t.Skip("set FASTCALL_SIM_SCALE=100,300,1000 to run (docs/HEARTBEAT.md, Measured)")
	}
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 4 {
			t.Fatalf("FASTCALL_SIM_SCALE: bad size %q", f)
		}
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runScale(t, n, *flagBase) })
		})
	}
}

// scaleRounds is how many crashes and how many refutations a run
// measures.
const scaleRounds = 10

type scaleWorld struct {
	t     *testing.T
	net   *simnet.Network
	hcfg  heartbeat.Config
	addrs []netip.AddrPort
	eps   []*rfc.Endpoint
	svcs  []*heartbeat.Service
	mu    struct {
		sync.Mutex
		dead   map[[2]int]time.Duration // observer, member -> first EventDead
		sus    map[int]time.Duration    // member -> first EventSuspect anywhere
		susAt  map[[2]int]time.Duration // observer, crashed member -> first EventSuspect
		deaths int                      // EventDead of members that did not crash
	}
	crashed map[int]bool
	start   time.Time
}

func runScale(t *testing.T, n int, seed uint64) {
	rnd := simnet.NewRand(seed)
	link := simnet.Faults{Delay: simnet.Dist{Base: time.Millisecond, Jitter: 2 * time.Millisecond}}
	w := &scaleWorld{t: t, net: simnet.New(seed, link, simnet.NewTrace(0)), crashed: map[int]bool{}, start: time.Now()}
	defer w.net.Close()
	w.mu.dead = map[[2]int]time.Duration{}
	w.mu.sus = map[int]time.Duration{}
	w.mu.susAt = map[[2]int]time.Duration{}
	w.hcfg = heartbeat.DefaultConfig()
	w.hcfg.Logger = quietLogger
	w.hcfg.MaxMembers = max(w.hcfg.MaxMembers, n)
	iv := w.hcfg.Interval
	for i := 0; i < n; i++ {
		w.addrs = append(w.addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 7200))
	}
	w.eps = make([]*rfc.Endpoint, n)
	w.svcs = make([]*heartbeat.Service, n)
	// Members start within one Interval, a few at a time, as a
	// cluster's processes do; then the cluster settles.
	for i := 0; i < n; i++ {
		if i%max(1, n/10) == 0 {
			time.Sleep(rnd.Dur(w.hcfg.Tick))
		}
		w.startMember(i)
	}
	time.Sleep(10 * iv)
	w.mu.Lock()
	startDeaths := w.mu.deaths
	w.mu.deaths = 0
	w.mu.Unlock()
	var sus0 uint64
	for _, s := range w.svcs {
		sus0 += s.Stats().Suspects
	}
	t.Logf("N=%d start: %d deaths, %d suspicions while the members started", n, startDeaths, sus0)

	// Steady phase at 5% loss.
	lossy := link
	lossy.Loss = 0.05
	w.net.SetDefault(lossy)
	const steady = 100
	tx0 := w.tx()
	time.Sleep(steady * iv)
	perMember := float64(w.tx()-tx0) / float64(n) / steady
	w.mu.Lock()
	steadyDeaths := w.mu.deaths
	w.mu.Unlock()
	var sus uint64
	var sum heartbeat.Stats
	for _, s := range w.svcs {
		st := s.Stats()
		sus += st.Suspects
		sum.Probes += st.Probes
		sum.ProbeFails += st.ProbeFails
		sum.IndirectSent += st.IndirectSent
		sum.Relayed += st.Relayed
		sum.RelayDropped += st.RelayDropped
		sum.Refutations += st.Refutations
		sum.GossipSent += st.GossipSent
		sum.UpdatesSent += st.UpdatesSent
	}
	sus -= sus0
	t.Logf("steady: %+v", sum)

	// Crashes, one at a time, still at 5% loss.
	var detect []float64
	undetected := 0
	for r := 0; r < scaleRounds; r++ {
		v := int(rnd.Below(uint64(n)))
		for w.crashed[v] {
			v = int(rnd.Below(uint64(n)))
		}
		at := time.Since(w.start)
		w.mu.Lock()
		w.crashed[v] = true
		w.mu.Unlock()
		w.net.Crash(w.addrs[v])
		w.svcs[v].Close()
		w.eps[v].Close()
		time.Sleep(30 * iv)
		w.mu.Lock()
		first, last, lastAt := time.Duration(-1), time.Duration(0), -1
		for i := 0; i < n; i++ {
			if w.crashed[i] {
				continue
			}
			d, ok := w.mu.dead[[2]int{i, v}]
			if !ok {
				undetected++
				continue
			}
			detect = append(detect, float64(d-at)/float64(iv))
			if first < 0 || d < first {
				first = d
			}
			if d > last {
				last, lastAt = d, i
			}
		}
		sus, ok := w.mu.sus[v]
		lastSus, lastOK := w.mu.susAt[[2]int{lastAt, v}]
		w.mu.Unlock()
		if !ok {
			sus = at - iv
		}
		if !lastOK {
			lastSus = at - iv
		}
		t.Logf("N=%d crash %d: first suspicion %.2f, first death %.2f, last death %.2f intervals after the crash (that member suspected it at %.2f)",
			n, r, float64(sus-at)/float64(iv), float64(first-at)/float64(iv), float64(last-at)/float64(iv), float64(lastSus-at)/float64(iv))
	}

	// Refutations: a live member told it is suspect raises its
	// incarnation; every member must come to hold the new one.
	var spread []float64
	unspread := 0
	for r := 0; r < scaleRounds; r++ {
		x := int(rnd.Below(uint64(n)))
		y := int(rnd.Below(uint64(n)))
		for w.crashed[x] || w.crashed[y] || x == y {
			x, y = int(rnd.Below(uint64(n))), int(rnd.Below(uint64(n)))
		}
		inc := w.eps[x].Incarnation()
		at := time.Since(w.start)
		w.suspect(y, x, inc)
		seen := make([]bool, n)
		left := 0
		for i := 0; i < n; i++ {
			if i != x && !w.crashed[i] {
				left++
			}
		}
		for step := 0; left > 0 && step < int(30*iv/w.hcfg.Tick); step++ {
			for i := 0; i < n; i++ {
				if seen[i] || i == x || w.crashed[i] {
					continue
				}
				if m, ok := w.svcs[i].Member(w.addrs[x]); ok && m.Incarnation > inc {
					seen[i] = true
					left--
					spread = append(spread, float64(time.Since(w.start)-at)/float64(iv))
				}
			}
			time.Sleep(w.hcfg.Tick)
		}
		unspread += left
		if left > 0 {
			for i := 0; i < n; i++ {
				if !seen[i] && i != x && !w.crashed[i] {
					m, _ := w.svcs[i].Member(w.addrs[x])
					t.Logf("N=%d refutation %d of member %d (incarnation %d): member %d holds %v at %d", n, r, x, inc, i, m.State, m.Incarnation)
				}
			}
		}
		time.Sleep(5 * iv)
	}

	w.mu.Lock()
	falseDeaths := w.mu.deaths
	w.mu.Unlock()
	for i := range w.svcs {
		if !w.crashed[i] {
			w.svcs[i].Close()
			w.eps[i].Close()
		}
	}
	p := func(xs []float64, q float64) float64 {
		if len(xs) == 0 {
			return -1
		}
		slices.Sort(xs)
		k := int(q*float64(len(xs))+0.999999) - 1
		return xs[max(0, min(k, len(xs)-1))]
	}
	t.Logf("N=%d interval=%v: steady 5%% loss %d intervals: false deaths %d, suspicions %d, datagrams per member per interval %.2f",
		n, iv, steady, steadyDeaths, sus, perMember)
	t.Logf("N=%d detection of %d crashes by every other member (%d samples, %d undetected in 30 intervals): p50 %.2f p99 %.2f max %.2f intervals",
		n, scaleRounds, len(detect), undetected, p(detect, 0.5), p(detect, 0.99), p(detect, 1))
	t.Logf("N=%d dissemination of %d refutations to every member (%d samples, %d not reached in 30 intervals): p50 %.2f p99 %.2f max %.2f intervals",
		n, scaleRounds, len(spread), unspread, p(spread, 0.5), p(spread, 0.99), p(spread, 1))
	t.Logf("N=%d false deaths over the whole run (5%% loss): %d", n, falseDeaths)
	if falseDeaths != 0 {
		t.Errorf("%d deaths of members that did not crash", falseDeaths)
	}
	if undetected != 0 {
		t.Errorf("%d observers did not declare a crashed member dead within 30 intervals", undetected)
	}
}

func (w *scaleWorld) startMember(i int) {
	cfg := heartbeat.LightEngine(rfc.DefaultConfig())
	cfg.Logger = quietLogger
	cfg.MaxPeers = 4096
	ep := openNode(w.t, w.net, cfg, uint32(i+1), w.addrs[i])
	svc, err := heartbeat.Start(ep, w.hcfg, w.addrs)
	if err != nil {
		w.t.Fatal(err)
	}
	svc.OnEvent(func(ev heartbeat.Event) {
		j := w.index(ev.Addr)
		now := time.Since(w.start)
		if ev.Kind == heartbeat.EventSuspect {
			w.mu.Lock()
			if _, ok := w.mu.sus[j]; !ok && w.crashed[j] {
				w.mu.sus[j] = now
			}
			if _, ok := w.mu.susAt[[2]int{i, j}]; !ok && j >= 0 && w.crashed[j] {
				w.mu.susAt[[2]int{i, j}] = now
			}
			w.mu.Unlock()
			return
		}
		if ev.Kind != heartbeat.EventDead {
			return
		}
		w.mu.Lock()
		if _, ok := w.mu.dead[[2]int{i, j}]; !ok {
			w.mu.dead[[2]int{i, j}] = now
		}
		if j >= 0 && !w.crashed[j] {
			w.mu.deaths++
		}
		w.mu.Unlock()
	})
	if err := ep.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.eps[i], w.svcs[i] = ep, svc
}

// index returns the member number of addr (-1 if none). The addresses
// encode it.
func (w *scaleWorld) index(a netip.AddrPort) int {
	b := a.Addr().As4()
	i := int(b[2])<<8 | int(b[3])
	if i < len(w.addrs) && w.addrs[i] == a {
		return i
	}
	return -1
}

// tx sums the datagrams the live members' endpoints sent.
func (w *scaleWorld) tx() uint64 {
	var n uint64
	for i, ep := range w.eps {
		if !w.crashed[i] {
			n += ep.Stats().Tx
		}
	}
	return n
}

// suspect makes member y tell member x, in a heartbeat, that it
// suspects x at incarnation inc (what a member whose probes of x failed
// says); x refutes it by raising its incarnation.
func (w *scaleWorld) suspect(y, x int, inc uint32) {
	var ps wire.Params
	ps.Reset(make([]byte, 256))
	ps.Uint64(uint64(w.eps[y].Incarnation()))
	ps.Uint64(uint64(heartbeat.StateSuspect))
	ps.Uint64(uint64(inc))
	ps.Uint64(0)
	ps.Bytes(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*w.hcfg.Interval)
	defer cancel()
	if err := w.eps[y].Call(ctx, w.addrs[x], heartbeat.CallHeartbeat, &ps, nil); err != nil {
		w.t.Logf("suspect call: %v", err)
	}
}
