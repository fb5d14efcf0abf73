package sim

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

var (
	flagSeeds = flag.Int("sim.seeds", 2, "seeds to run per scenario")
	flagBase  = flag.Uint64("sim.base", 1, "first seed; seeds base .. base+seeds-1 run")
	flagSeed  = flag.Uint64("sim.seed", 0, "run only this seed, twice, and print its trace hash (replay)")
	flagTrace = flag.Int("sim.trace", 0, "print the last N trace events of every run (replay)")
	flagTime  = flag.Duration("sim.time", 10*time.Second, "virtual time of the fault phase of a run")
	flagQuiet = flag.Duration("sim.quiet", 5*time.Second, "virtual time after the faults stop")

	// The registry push at scale (docs/SIMULATION.md, "Scale"): the
	// size is set by flags so that go test runs a small world and a
	// measurement run the full one.
	flagRegScaleAgents = flag.Int("scale.agents", 50, "TestScaleRegistryPush: subscribed agents")
	flagRegScaleRegs   = flag.Int("scale.regs", 20, "TestScaleRegistryPush: measured registrations per loss rate")
	flagRegScaleTarget = flag.Duration("scale.target", 50*time.Millisecond, "TestScaleRegistryPush: bound on the p99 with no loss (0: report only)")
)

// failTrace is how many trace events a failure prints.
const failTrace = 400

// stuckGrace is how long past its bound a parked call is reported as
// stuck while the run goes on (it may never return, and then the run
// cannot end).
const stuckGrace = 5 * time.Second

// checker collects the violations of one run. Every violation is
// recorded in the trace too, so that the printed trace shows where it
// happened.
type checker struct {
	tr *simnet.Trace
	// stuck reports at once, and ends the test binary, a call parked
	// past its bound + stuckGrace, with the seed and the trace: a call
	// that never returns keeps the run from ending and printing its
	// failures.
	stuck func(msg string)
	mu    struct {
		sync.Mutex
		fails  []string
		nextID uint64
		parked map[uint64]string // timed calls not yet returned
	}
}

// engineTick is the timer granularity of an endpoint of configuration
// cfg (rfc Endpoint.tick: MinRTO/4, at least 100µs): the engine fails a
// call at the first tick at or after its deadline.
func engineTick(cfg rfc.Config) time.Duration {
	return max(cfg.MinRTO/4, 100*time.Microsecond)
}

// timed runs f, a call to a service API bounded by ctx's deadline, and
// checks that it returns by that deadline plus slack (one engine tick of
// the caller's endpoint: engineTick). A call still parked at the end of
// the run is a violation (checkParked). ctx without a deadline is a
// violation of the scenario: every timed call has one.
func (c *checker) timed(ctx context.Context, name string, slack time.Duration, f func() error) error {
	dl, ok := ctx.Deadline()
	if !ok {
		c.failf("%s: timed call without a context deadline", name)
		return f()
	}
	return c.timedUntil(name, time.Until(dl), slack, f)
}

// timedUntil is timed for a call whose bound is a timeout from now that
// is not a context's (an endpoint's DefaultTimeout).
func (c *checker) timedUntil(name string, timeout, slack time.Duration, f func() error) error {
	start := c.tr.Since()
	c.mu.Lock()
	c.mu.nextID++
	id := c.mu.nextID
	if c.mu.parked == nil {
		c.mu.parked = map[uint64]string{}
	}
	c.mu.parked[id] = fmt.Sprintf("%s (called at %v, deadline %v + %v)", name, start, timeout, slack)
	c.mu.Unlock()
	// Fires only for a call parked well past its bound: on time, the
	// timer is stopped before it fires and wakes nothing.
	watch := time.AfterFunc(timeout+slack+stuckGrace, func() {
		msg := fmt.Sprintf("%s called at %v is still parked at %v, deadline %v + %v", name, start, c.tr.Since(), timeout, slack)
		c.failf("%s", msg)
		if c.stuck != nil {
			c.stuck(msg)
		}
	})
	err := f()
	watch.Stop()
	el := c.tr.Since() - start
	c.mu.Lock()
	delete(c.mu.parked, id)
	c.mu.Unlock()
	if el > timeout+slack {
		c.failf("%s returned %v after %v, deadline %v (+%v)", name, wire.AsErrno(err), el, timeout, slack)
	}
	return err
}

// checkParked fails for every timed call not returned by the end of the
// run.
func (c *checker) checkParked() {
	c.mu.Lock()
	var left []string
	for _, s := range c.mu.parked {
		left = append(left, s)
	}
	c.mu.Unlock()
	slices.Sort(left)
	for _, s := range left {
		c.failf("%s never returned by the end of the run", s)
	}
}

// failf records a violation.
func (c *checker) failf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.tr.Add("VIOLATION", noAddr, noAddr, s)
	c.mu.Lock()
	c.mu.fails = append(c.mu.fails, c.tr.Since().String()+": "+s)
	c.mu.Unlock()
}

func (c *checker) failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.mu.fails...)
}

// scenario runs one seed inside a synctest bubble, with its trace and
// checker.
type scenario func(t *testing.T, seed uint64, chk *checker)

// runSeeds runs sc for every seed the flags name. A failing seed reports
// its violations, the end of its trace, and how to replay it.
func runSeeds(t *testing.T, name string, sc scenario) {
	if *flagSeed != 0 {
		c1, h1 := runOne(t, name, *flagSeed, sc)
		c2, h2 := runOne(t, name, *flagSeed, sc)
		t.Logf("%s seed %d: trace %d events hash %016x; replay %d events hash %016x", name, *flagSeed, c1, h1, c2, h2)
		if c1 != c2 || h1 != h2 {
			t.Errorf("%s seed %d did not replay exactly", name, *flagSeed)
		}
		return
	}
	for i := 0; i < *flagSeeds; i++ {
		seed := *flagBase + uint64(i)
		runOne(t, name, seed, sc)
		if t.Failed() {
			return
		}
	}
}

// runOne runs one seed and returns its trace's count and hash. The run
// has one processor (GOMAXPROCS 1): synctest makes time virtual, not
// scheduling; with one processor the goroutines of one instant run in
// the same order from run to run in practice, and a seed replays.
func runOne(t *testing.T, name string, seed uint64, sc scenario) (count, hash uint64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// crypto/rand from the seed: the jitter of rfc.Backoff waits
			// replays.
			cryptotest.SetGlobalRandom(t, seed)
			chk := &checker{tr: simnet.NewTrace(*flagTrace)}
			// A call parked past its bound + stuckGrace may never
			// return: the run cannot end to report it (the services'
			// timers keep virtual time going), so it ends here.
			chk.stuck = func(msg string) {
				var b strings.Builder
				chk.tr.Dump(&b, failTrace)
				panic(fmt.Sprintf("%s seed %d: %s\nlast %d trace events:\n%s\nreplay: make sim SCENARIO=%s SEED=%d SIMTIME=%v",
					name, seed, msg, failTrace, b.String(), name, seed, *flagTime))
			}
			sc(t, seed, chk)
			chk.checkParked()
			count, hash = chk.tr.Hash()
			if *flagTrace > 0 {
				var b strings.Builder
				chk.tr.Dump(&b, *flagTrace)
				t.Logf("trace of %s seed %d:\n%s", name, seed, b.String())
			}
			if fails := chk.failures(); len(fails) > 0 {
				var b strings.Builder
				chk.tr.Dump(&b, failTrace)
				t.Errorf("%s seed %d: %d violations:\n  %s\nlast %d trace events:\n%s\nreplay: make sim SCENARIO=%s SEED=%d SIMTIME=%v",
					name, seed, len(fails), strings.Join(fails, "\n  "), failTrace, b.String(), name, seed, *flagTime)
			}
		})
	})
	return count, hash
}

// quietLogger drops the services' logs: the trace is the record.
var quietLogger = slog.New(slog.DiscardHandler)

// crashNodes is what the crash-and-restart scenarios (Registry,
// Dispatch, Router) give their nodes alike: the endpoint configuration
// (room for the calls and duplicates of a run under faults) and n
// addresses, 10.0.subnet.1 and up, at port.
func crashNodes(n int, subnet byte, port uint16) (rfc.Config, []netip.AddrPort) {
	cfg := rfc.DefaultConfig()
	cfg.MaxPending = 256
	cfg.DupEntries = 4096
	cfg.Logger = quietLogger
	addrs := make([]netip.AddrPort, n)
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, subnet, byte(i + 1)}), port)
	}
	return cfg, addrs
}

// startClients runs load on wg for each client node i from c0 to c1,
// with rnd.Fork(i), forked in that order before the fault phase forks
// its own: what a client draws does not depend on when the others run,
// so a seed replays.
func startClients(wg *sync.WaitGroup, rnd *simnet.Rand, c0, c1 int, load func(i int, rnd *simnet.Rand)) {
	for i := c0; i <= c1; i++ {
		r := rnd.Fork(uint64(i))
		wg.Go(func() { load(i, r) })
	}
}

// openNode opens the endpoint of a node of a scenario, cfg with NodeID
// node, at addr on net; it is not started, so that the node's roles
// register their calls first (startNode). A failure ends the test.
func openNode(t testing.TB, net *simnet.Network, cfg rfc.Config, node uint32, addr netip.AddrPort) *rfc.Endpoint {
	t.Helper()
	cfg.NodeID = node
	ep, err := rfc.OpenTransport(cfg, net.Attach(addr))
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// startNode starts ep once the node's roles registered their calls,
// unless a role started it already, and returns it. A failure ends the
// test.
func startNode(t testing.TB, ep *rfc.Endpoint) *rfc.Endpoint {
	t.Helper()
	if !ep.Started() {
		if err := ep.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return ep
}

// killNode closes a node's endpoint *ep first, as a process killed (the
// caller then closes what ran on it), and clears it. It reports whether
// the node was up.
func killNode(ep **rfc.Endpoint) bool {
	if *ep == nil {
		return false
	}
	(*ep).Close()
	*ep = nil
	return true
}

// TestSimReplay runs seeds of every scenario twice each and requires
// equal trace hashes: a seed replays exactly.
func TestSimReplay(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("-sim.seed replays its own seed")
	}
	if raceEnabled {
		t.Skip("the race detector shuffles the goroutines of one instant; replay needs a build without -race")
	}
	for _, sc := range []struct {
		name string
		run  scenario
	}{{"RFC", runRFC}, {"Heartbeat", runHeartbeat}, {"MasterWorker", runMasterWorker}, {"Dispatch", runDispatch}, {"Router", runRouter}, {"Registry", runRegistry}} {
		for _, seed := range []uint64{1} {
			c1, h1 := runOne(t, sc.name, seed, sc.run)
			c2, h2 := runOne(t, sc.name, seed, sc.run)
			if c1 != c2 || h1 != h2 {
				t.Errorf("%s seed %d: trace %d events hash %016x, replay %d events hash %016x", sc.name, seed, c1, h1, c2, h2)
			}
		}
	}
}
