package bench

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// OpResult is the median over rounds of one system doing one operation
// from some goroutines (or processes), with the spread of the rounds.
type OpResult struct {
	Group  string // the workload, e.g. "Get, 1 goroutine"
	System string
	Base   bool    // the fastcall row of its group, the ratios' numerator
	NsOp   float64 // median wall time per operation per goroutine
	NsMin  float64
	NsMax  float64
	OpsSec float64 // median operations per second, all goroutines
	Allocs float64 // allocations per operation, whole process; < 0: not measured
	Note   string
}

// opsBatch is how many operations a goroutine runs between clock reads.
const opsBatch = 64

// MeasureOps runs op on g goroutines for warmup then d and returns the
// operations done in d and the process's allocations per operation. op
// gets the goroutine index and a running counter.
func MeasureOps(g int, warmup, d time.Duration, op func(w, i int)) (ops int64, elapsed time.Duration, allocs float64) {
	var stop, measuring atomic.Bool
	counts := make([]int64, g)
	var wg sync.WaitGroup
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			i := 0
			var n int64
			counted := false
			for !stop.Load() {
				for k := 0; k < opsBatch; k++ {
					op(w, i)
					i++
				}
				if measuring.Load() {
					if !counted {
						counted = true // the first batch straddles the start
						continue
					}
					n += opsBatch
				}
			}
			counts[w] = n
		}(w)
	}
	elapsed, mallocs := measuredPhase(warmup, d, func() { measuring.Store(true) }, func() { stop.Store(true) }, wg.Wait)
	for _, c := range counts {
		ops += c
	}
	if ops > 0 {
		allocs = float64(mallocs) / float64(ops)
	}
	return ops, elapsed, allocs
}

// opRound is one round's figures.
type opRound struct {
	nsOp, opsSec, allocs float64
}

func roundOf(g int, ops int64, elapsed time.Duration, allocs float64) opRound {
	if ops == 0 {
		return opRound{}
	}
	return opRound{nsOp: float64(elapsed.Nanoseconds()) * float64(g) / float64(ops),
		opsSec: float64(ops) / elapsed.Seconds(), allocs: allocs}
}

func summarizeOps(group, system string, base bool, rs []opRound) OpResult {
	ns := make([]float64, len(rs))
	tp := make([]float64, len(rs))
	al := make([]float64, len(rs))
	for i, r := range rs {
		ns[i], tp[i], al[i] = r.nsOp, r.opsSec, r.allocs
	}
	sort.Float64s(ns)
	sort.Float64s(tp)
	sort.Float64s(al)
	return OpResult{Group: group, System: system, Base: base, NsOp: medianF(ns), NsMin: ns[0], NsMax: ns[len(ns)-1],
		OpsSec: medianF(tp), Allocs: medianF(al)}
}

// opSystem is one contender of an op group.
type opSystem struct {
	name string
	base bool
	g    int
	op   func(w, i int)
	// run replaces MeasureOps when set (another process measures).
	run func() (opRound, error)
}

// runOpGroup runs the systems of one group, rounds interleaved.
func runOpGroup(group string, o Options, systems []opSystem, progress func(string)) ([]OpResult, error) {
	rounds := make([][]opRound, len(systems))
	for r := 0; r < o.Rounds; r++ {
		for i, s := range systems {
			var rd opRound
			if s.run != nil {
				var err error
				if rd, err = s.run(); err != nil {
					return nil, fmt.Errorf("%s, %s: %v", group, s.name, err)
				}
			} else {
				ops, el, al := MeasureOps(s.g, o.Warmup, o.Duration, s.op)
				rd = roundOf(s.g, ops, el, al)
			}
			rounds[i] = append(rounds[i], rd)
			if progress != nil {
				progress(fmt.Sprintf("%s, %s round %d: %.0f ns/op, %.0f ops/s", group, s.name, r+1, rd.nsOp, rd.opsSec))
			}
		}
	}
	var out []OpResult
	for i, s := range systems {
		out = append(out, summarizeOps(group, s.name, s.base, rounds[i]))
	}
	return out, nil
}

// WriteOpsMarkdown writes one row per group and system with the ratios
// base ÷ system (time per op: below 1 means the base is faster).
func WriteOpsMarkdown(w io.Writer, rs []OpResult, baseLabel string) {
	var rows [][]string
	for _, r := range rs {
		var b *OpResult
		for i := range rs {
			if rs[i].Group == r.Group && rs[i].Base {
				b = &rs[i]
			}
		}
		rt, rops := "", ""
		if b != nil {
			rt, rops = ratio(b.NsOp, r.NsOp), ratio(b.OpsSec, r.OpsSec)
		}
		al := fmt.Sprintf("%.2f", r.Allocs)
		if r.Allocs < 0 {
			al = "n/a"
		}
		name := r.System
		if r.Note != "" {
			name += " (" + r.Note + ")"
		}
		rows = append(rows, []string{r.Group, name, fmt.Sprintf("%.0f (%.0f–%.0f)", r.NsOp, r.NsMin, r.NsMax),
			fmt.Sprintf("%.0f", r.OpsSec), al, rt, rops})
	}
	WriteTable(w, []string{"workload", "system", "ns/op per goroutine (min–max)", "ops/s, all goroutines", "allocs/op",
		baseLabel + " ÷ system: time/op", "ops/s"}, rows)
}

func sortFloats(v []float64) { sort.Float64s(v) }
