package sim

import (
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"testing/synctest"
	"time"

	"fastcall/rfc/simnet"
)

var (
	flagSeeds = flag.Int("sim.seeds", 2, "seeds to run per scenario")
	flagBase  = flag.Uint64("sim.base", 1, "first seed; seeds base .. base+seeds-1 run")
	flagSeed  = flag.Uint64("sim.seed", 0, "run only this seed, twice, and print its trace hash (replay)")
	flagTrace = flag.Int("sim.trace", 0, "print the last N trace events of every run (replay)")
	flagTime  = flag.Duration("sim.time", 10*time.Second, "virtual time of the fault phase of a run")
	flagQuiet = flag.Duration("sim.quiet", 5*time.Second, "virtual time after the faults stop")
)

// failTrace is how many trace events a failure prints.
const failTrace = 400

// checker collects the violations of one run. Every violation is
// recorded in the trace too, so that the printed trace shows where it
// happened.
type checker struct {
	tr *simnet.Trace
	mu struct {
		sync.Mutex
		fails []string
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
			sc(t, seed, chk)
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
