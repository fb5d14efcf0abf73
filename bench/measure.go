package bench

import (
	"runtime"
	"sort"
	"sync"
	"time"
)

// Options shape a run.
type Options struct {
	Warmup   time.Duration
	Duration time.Duration
	Rounds   int
}

// Sample is one round of one system on one shape.
type Sample struct {
	Calls      int
	Errors     int
	Elapsed    time.Duration
	Latencies  []time.Duration // sorted
	Mallocs    uint64
	Throughput float64 // calls per second
}

// Percentile returns the q-quantile of the sorted latencies.
func (s *Sample) Percentile(q float64) time.Duration {
	if len(s.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(s.Latencies))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s.Latencies) {
		i = len(s.Latencies) - 1
	}
	return s.Latencies[i]
}

// AllocsPerCall is the whole process's allocations per call.
func (s *Sample) AllocsPerCall() float64 {
	if s.Calls == 0 {
		return 0
	}
	return float64(s.Mallocs) / float64(s.Calls)
}

// maxSamples bounds the latencies kept per caller per round.
const maxSamples = 1 << 20

// Drive runs callers goroutines, each calling call in a loop, for warmup
// then d, and returns what it measured during d. call returns false on an
// error.
func Drive(callers int, warmup, d time.Duration, call func(worker int) bool) Sample {
	var wg sync.WaitGroup
	var start sync.WaitGroup
	type result struct {
		lat  []time.Duration
		errs int
	}
	res := make([]result, callers)
	stopCh := make(chan struct{})
	phase := make(chan struct{}) // closed when the measured phase begins
	start.Add(callers)
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			start.Done()
			lat := make([]time.Duration, 0, 1<<14)
			errs := 0
			inPhase := false
			for {
				select {
				case <-stopCh:
					res[w] = result{lat, errs}
					return
				default:
				}
				if !inPhase {
					select {
					case <-phase:
						inPhase = true
					default:
					}
				}
				t0 := time.Now()
				ok := call(w)
				dt := time.Since(t0)
				if inPhase {
					if !ok {
						errs++
					} else if len(lat) < maxSamples {
						lat = append(lat, dt)
					}
				}
			}
		}(w)
	}
	start.Wait()
	elapsed, mallocs := measuredPhase(warmup, d, func() { close(phase) }, func() { close(stopCh) }, wg.Wait)
	var s Sample
	for _, r := range res {
		s.Latencies = append(s.Latencies, r.lat...)
		s.Errors += r.errs
	}
	s.Calls = len(s.Latencies)
	sort.Slice(s.Latencies, func(i, j int) bool { return s.Latencies[i] < s.Latencies[j] })
	s.Elapsed = elapsed
	s.Mallocs = mallocs
	s.Throughput = float64(s.Calls) / elapsed.Seconds()
	return s
}

// measuredPhase is the timed part of Drive and MeasureOps, whose workers
// run already: it waits out warmup, collects garbage, then calls begin,
// sleeps d and calls end, and once wait has returned (the workers have
// stopped) it returns the time from begin to end and the process's
// allocations from before begin until then.
func measuredPhase(warmup, d time.Duration, begin, end, wait func()) (elapsed time.Duration, mallocs uint64) {
	time.Sleep(warmup)
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	begin()
	time.Sleep(d)
	end()
	elapsed = time.Since(t0)
	wait()
	runtime.ReadMemStats(&m1)
	return elapsed, m1.Mallocs - m0.Mallocs
}

// measureCounts measures each of counts in order with measure, tells
// progress (when not nil) what say makes of each point, and stops at the
// first failure, returning it with the points measured before it.
func measureCounts[P any](counts []int, measure func(n int) (P, error), progress func(string), say func(n int, p P) string) ([]P, error) {
	var out []P
	for _, n := range counts {
		p, err := measure(n)
		if err != nil {
			return out, err
		}
		if progress != nil {
			progress(say(n, p))
		}
		out = append(out, p)
	}
	return out, nil
}
