package sim

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
)

// TestSimHeartbeat is the liveness scenario: members run the heartbeat
// service on the simulated network while the fault schedule crashes and
// restarts them, pauses them, cuts links and makes links lossy and slow.
// Invariants: a member is declared dead only if it crashed or was
// paused, or it or its observer was cut off or paused, within the
// detection bound before the verdict; a crashed member is declared dead
// by every member that stayed up within the detection bound (plus the
// longest link delay); once the faults stop every member sees every
// other alive.
func TestSimHeartbeat(t *testing.T) { runSeeds(t, "Heartbeat", runHeartbeat) }

// hbMaxDelay bounds a datagram's time in the heartbeat scenario's
// network (base + jitter + tail + reordering, see hbLinks): a datagram a
// member sent just before it crashed may still be heard that much later.
var hbMaxDelay = hbLinkDraw.maxDelay()

// hbLinks draws a link fault model under which the heartbeat is meant
// to hold: moderate loss, short delays.
func hbLinks(rnd *simnet.Rand) simnet.Faults { return hbLinkDraw.draw(rnd) }

type hbWorld struct {
	t     *testing.T
	net   *simnet.Network
	chk   *checker
	log   *faultLog
	cfg   rfc.Config
	hcfg  heartbeat.Config
	bound time.Duration
	addrs []netip.AddrPort
	eps   []*rfc.Endpoint
	svcs  []*heartbeat.Service
	// roles, if set, starts what else runs on member i (after the
	// heartbeat service, before the endpoint starts) and returns how to
	// stop it.
	roles func(i int, svc *heartbeat.Service) (stop func())
	stops []func()
	mu    struct {
		sync.Mutex
		view map[[2]int]heartbeat.EventKind // observer, member -> last alive/suspect/dead event
	}
}

func runHeartbeat(t *testing.T, seed uint64, chk *checker) {
	w := &hbWorld{t: t, chk: chk, log: newFaultLog()}
	w.run(seed, nil)
}

// run runs the heartbeat world; between the start of every member and
// the fault schedule it runs load, if set, on a goroutine of its own
// that must return once stop is closed.
func (w *hbWorld) run(seed uint64, load func(stop <-chan struct{}, rnd *simnet.Rand)) {
	chk := w.chk
	rnd := simnet.NewRand(seed)
	w.mu.view = map[[2]int]heartbeat.EventKind{}
	w.net = simnet.New(seed, calm(), chk.tr)
	defer w.net.Close()
	w.cfg = rfc.DefaultConfig()
	w.cfg.MaxPending = 256
	w.cfg.DupEntries = 1024
	w.hcfg = heartbeat.DefaultConfig().WithInterval([]time.Duration{50, 100, 200}[rnd.Below(3)] * time.Millisecond)
	// A probe's deadline falls between two ticks of the probe loop,
	// not on one: two goroutines woken at one instant (here the
	// engine's timer goroutine failing the probe and the probe loop
	// looking at it) run in the scheduler's order, and the run would
	// not replay exactly.
	// Likewise the reprobe loop's ticker against the probe loop's, and
	// the engine's retransmission timers (whole milliseconds when
	// they start from InitialRTO) against the probe loop's ticks.
	w.hcfg.Tick += w.hcfg.Tick / 13
	w.hcfg.ProbeTimeout -= w.hcfg.Tick / 3
	w.hcfg.ReprobeInterval += w.hcfg.Tick / 7
	w.hcfg.Logger = quietLogger
	w.cfg.Logger = quietLogger
	n := 4 + int(rnd.Below(3))
	w.bound = heartbeat.DetectBoundAt(w.hcfg, n)
	for i := 0; i < n; i++ {
		w.addrs = append(w.addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), 7100))
	}
	w.eps = make([]*rfc.Endpoint, n)
	w.svcs = make([]*heartbeat.Service, n)
	w.stops = make([]func(), n)
	chk.tr.Add("world", noAddr, noAddr, fmt.Sprintf("seed=%d members=%d interval=%v bound=%v", seed, n, w.hcfg.Interval, w.bound))
	for i := 0; i < n; i++ {
		// Members start a random fraction of a tick apart, as processes
		// do, so that their timers do not fall on the same instants.
		time.Sleep(rnd.Dur(w.hcfg.Tick))
		w.start(i)
	}
	s := &schedule{net: w.net, tr: chk.tr, rnd: rnd.Fork(1), addrs: w.addrs, log: w.log, maxDown: 3 * time.Second, links: hbLinks,
		crash:   w.stop,
		restart: func(i int, _ *simnet.Rand) { w.start(i) },
		onCrash: w.crashCheck,
	}
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	if load != nil {
		lrnd := rnd.Fork(2)
		go func() { load(stopLoad, lrnd); close(loadDone) }()
	} else {
		close(loadDone)
	}
	s.run(*flagTime, calm())
	// Once the faults stop, every member must see every other alive
	// within a few detection bounds and reprobe intervals.
	time.Sleep(2*w.bound + 2*w.hcfg.ReprobeInterval + time.Second)
	for i, svc := range w.svcs {
		for _, m := range svc.Members() {
			if m.State != heartbeat.StateAlive {
				chk.failf("after the faults, %v sees %v %v (incarnation %d)", w.addrs[i], m.Addr, m.State, m.Incarnation)
			}
		}
	}
	time.Sleep(*flagQuiet)
	close(stopLoad)
	<-loadDone
	for i := range w.svcs {
		w.stop(i)
	}
}

// start starts a new incarnation of member i.
func (w *hbWorld) start(i int) {
	ep := openNode(w.t, w.net, w.cfg, uint32(i+1), w.addrs[i])
	svc, err := heartbeat.Start(ep, w.hcfg, w.addrs)
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	for j := range w.addrs {
		delete(w.mu.view, [2]int{i, j})
	}
	w.mu.Unlock()
	svc.OnEvent(func(ev heartbeat.Event) { w.event(i, ev) })
	if w.roles != nil {
		w.stops[i] = w.roles(i, svc)
	}
	if err := ep.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.eps[i], w.svcs[i] = ep, svc
}

// stop stops member i's service and endpoint (a crash, or the end).
func (w *hbWorld) stop(i int) {
	if w.svcs[i] == nil {
		return
	}
	if w.stops[i] != nil {
		w.stops[i]()
		w.stops[i] = nil
	}
	w.svcs[i].Close()
	w.eps[i].Close()
	w.svcs[i], w.eps[i] = nil, nil
}

func (w *hbWorld) index(a netip.AddrPort) int {
	for i, x := range w.addrs {
		if x == a {
			return i
		}
	}
	return -1
}

// event records what observer i now thinks of a member, and checks a
// death verdict against the faults.
func (w *hbWorld) event(i int, ev heartbeat.Event) {
	now := w.chk.tr.Since()
	w.chk.tr.Add("hb-"+ev.Kind.String(), w.addrs[i], ev.Addr, fmt.Sprintf("inc=%d", ev.Incarnation))
	j := w.index(ev.Addr)
	if j < 0 {
		return
	}
	switch ev.Kind {
	case heartbeat.EventAlive, heartbeat.EventSuspect, heartbeat.EventDead:
		w.mu.Lock()
		w.mu.view[[2]int{i, j}] = ev.Kind
		w.mu.Unlock()
	}
	if ev.Kind == heartbeat.EventDead && !w.log.silenced(i, j, now-w.bound-w.hcfg.Interval-hbMaxDelay, now) {
		w.chk.failf("false death: %v declared %v dead (incarnation %d) with no crash, pause or cut within %v",
			w.addrs[i], ev.Addr, ev.Incarnation, w.bound+w.hcfg.Interval+hbMaxDelay)
	}
}

// crashCheck asks, for a crash of member j that lasts long enough, for a
// check one detection bound later: every member that stayed up has
// declared j dead.
func (w *hbWorld) crashCheck(j int, down time.Duration) (time.Duration, func()) {
	wait := w.bound + hbMaxDelay + w.hcfg.Tick
	if down <= wait {
		return 0, nil
	}
	from := w.chk.tr.Since()
	return wait, func() {
		to := w.chk.tr.Since()
		for i := range w.addrs {
			if i == j || !w.log.undisturbed(i, from, to) {
				continue
			}
			w.mu.Lock()
			k := w.mu.view[[2]int{i, j}]
			w.mu.Unlock()
			if k != heartbeat.EventDead {
				w.chk.failf("%v crashed at %v; %v has not declared it dead within %v (last verdict: %v)", w.addrs[j], from, w.addrs[i], wait, k)
			}
		}
	}
}

// TestSimHeartbeatSeeds replays seeds that once broke the detection
// bound: 9500022, a crashed member still suspect past DetectBoundAt at an
// observer whose health had risen to 1 and whose probe schedule was
// thinned (it keeps every slot at health 1 now); 9720010, a member that
// crashed as an observer restarted, suspected there before any
// incarnation of it was heard, then cleared by another member's older
// word of it alive (a suspicion at no incarnation now adopts the one
// heard and stays); 9760001, a suspicion whose timer a refutation heard
// meanwhile stretched past the bound (a suspicion's timer is stretched by
// no more than the health score at its start).
func TestSimHeartbeatSeeds(t *testing.T) {
	for _, seed := range []uint64{9500022, 9720010, 9760001} {
		runOne(t, "Heartbeat", seed, runHeartbeat)
	}
}
