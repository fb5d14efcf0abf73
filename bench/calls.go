package bench

import (
	"sort"
	"time"
)

// Shape is one call workload: concurrent callers and payload bytes.
type Shape struct {
	Callers int
	Size    int
}

// CallResult is the median over rounds of one system on one shape, with
// the spread (min and max over rounds) of throughput and p50.
type CallResult struct {
	System        string
	Shape         Shape
	Rounds        int
	Calls         int     // total over the rounds
	Errors        int     // total over the rounds
	Throughput    float64 // median calls/s
	ThroughputMin float64
	ThroughputMax float64
	P50, P99      time.Duration // medians over rounds
	P999          time.Duration
	P50Min        time.Duration
	P50Max        time.Duration
	AllocsPerCall float64 // median, whole process
	// Latencies of the median round (by p50), for charts.
	Latencies []time.Duration `json:"-"`
}

// CallShapes are the shapes the calls case runs.
var CallShapes = []Shape{{1, 64}, {32, 64}, {1, 1024}, {32, 1024}}

// RunCalls runs every system on every shape, rounds interleaved.
func RunCalls(systems []System, shapes []Shape, o Options, progress func(string)) ([]CallResult, error) {
	for _, s := range systems {
		if err := s.Start(); err != nil {
			return nil, err
		}
		defer s.Stop()
	}
	var out []CallResult
	for _, sh := range shapes {
		samples := make([][]Sample, len(systems))
		for r := 0; r < o.Rounds; r++ {
			for i, s := range systems {
				call, done, err := s.Client(sh.Callers, sh.Size)
				if err != nil {
					return nil, err
				}
				smp := Drive(sh.Callers, o.Warmup, o.Duration, call)
				done()
				samples[i] = append(samples[i], smp)
				if progress != nil {
					progress(s.Name() + " " + shapeName(sh) + " round " + itoa(r+1) + ": " + itoa(int(smp.Throughput)) + " calls/s, p50 " + smp.Percentile(0.5).String())
				}
			}
		}
		for i, s := range systems {
			out = append(out, Summarize(s.Name(), sh, samples[i]))
		}
	}
	return out, nil
}

// Summarize reduces the rounds of one system on one shape to medians and
// spreads.
func Summarize(name string, sh Shape, ss []Sample) CallResult {
	r := CallResult{System: name, Shape: sh, Rounds: len(ss)}
	var tp, allocs []float64
	var p50, p99, p999 []time.Duration
	for _, s := range ss {
		r.Calls += s.Calls
		r.Errors += s.Errors
		tp = append(tp, s.Throughput)
		allocs = append(allocs, s.AllocsPerCall())
		p50 = append(p50, s.Percentile(0.5))
		p99 = append(p99, s.Percentile(0.99))
		p999 = append(p999, s.Percentile(0.999))
	}
	sort.Float64s(tp)
	sort.Float64s(allocs)
	r.Throughput, r.ThroughputMin, r.ThroughputMax = medianF(tp), tp[0], tp[len(tp)-1]
	r.AllocsPerCall = medianF(allocs)
	r.P50, r.P50Min, r.P50Max = medianD(p50)
	r.P99, _, _ = medianD(p99)
	r.P999, _, _ = medianD(p999)
	// Keep the round whose p50 is the median, for the latency chart.
	for _, s := range ss {
		if s.Percentile(0.5) == r.P50 {
			r.Latencies = s.Latencies
			break
		}
	}
	return r
}

// Downsample returns n evenly spaced quantiles of the sorted latencies (all
// of them if there are fewer), enough to draw a distribution.
func Downsample(lat []time.Duration, n int) []time.Duration {
	if len(lat) <= n || n < 2 {
		return lat
	}
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = lat[i*(len(lat)-1)/(n-1)]
	}
	return out
}

func medianF(v []float64) float64 { return v[len(v)/2] }

func medianD(v []time.Duration) (med, min, max time.Duration) {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[0], s[len(s)-1]
}

func shapeName(sh Shape) string {
	c := "sequential"
	if sh.Callers > 1 {
		c = itoa(sh.Callers) + " callers"
	}
	return c + ", " + itoa(sh.Size) + " B"
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
