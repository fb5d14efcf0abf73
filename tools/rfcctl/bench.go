package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/wire"
)

// benchSummary is the -json output of rfcctl bench.
type benchSummary struct {
	Target     string         `json:"target"`
	Call       string         `json:"call"`
	Callers    int            `json:"callers"`
	Seconds    float64        `json:"seconds"`
	Calls      int            `json:"calls"`
	Errors     map[string]int `json:"errors"`
	Throughput float64        `json:"calls_per_second"`
	P50us      float64        `json:"p50_us"`
	P90us      float64        `json:"p90_us"`
	P99us      float64        `json:"p99_us"`
	P999us     float64        `json:"p999_us"`
	MaxUs      float64        `json:"max_us"`
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	c := newCommand("bench", "ADDR", stderr, withClient)
	callers := c.fs.Int("c", 8, "concurrent callers")
	dur := c.fs.Duration("d", 5*time.Second, "duration of the load")
	call := c.fs.String("call", "echo", "call to make: echo (with -size bytes), ping, add, counter, or a number (no parameters)")
	size := c.fs.Int("size", 64, "echo payload bytes")
	c.json("print the summary as JSON")
	csvPath := c.fs.String("csv", "", "write every sample's latency (µs) to this file")
	pos, code, ok := c.parse(args, func(pos []string) bool {
		return len(pos) == 1 && *callers >= 1 && *callers <= 4096 && *dur > 0 && *size >= 0 && *size <= wire.MaxDatagram
	}, "want ADDR, 1 <= -c <= 4096, -d > 0, 0 <= -size")
	if !ok {
		return code
	}
	cf, asJSON := c.cf, c.asJSON
	dst, err := parseAddr(pos[0])
	if err != nil {
		return c.usageError("%v", err)
	}
	no, err := callNumber(*call)
	if err != nil {
		return c.usageError("%v", err)
	}
	fill := func(p *wire.Params) {}
	switch no {
	case builtin.CallEcho, builtin.CallEchoW:
		payload := make([]byte, *size)
		fill = func(p *wire.Params) { p.Bytes(payload) }
	case builtin.CallAdd:
		fill = func(p *wire.Params) { p.Int64(1); p.Int64(2) }
	}
	cf.inFlight = *callers
	ep, code := cf.open(dst, stderr)
	if code != 0 {
		return code
	}
	defer ep.Close()
	var done atomic.Bool
	var count atomic.Int64
	lats := make([][]time.Duration, *callers)
	errs := make([]map[wire.Errno]int, *callers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *callers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var p wire.Params
			seg := make([]byte, *size+64)
			var rep rfc.Reply
			errs[w] = map[wire.Errno]int{}
			for !done.Load() {
				p.Reset(seg)
				fill(&p)
				ctx, cancel := cf.ctx()
				t0 := time.Now()
				err := ep.Call(ctx, dst, no, &p, &rep)
				d := time.Since(t0)
				cancel()
				if err != nil {
					errs[w][wire.AsErrno(err)]++
					continue
				}
				lats[w] = append(lats[w], d)
				count.Add(1)
			}
		}(w)
	}
	tty := isTerminal(stdout) && !*asJSON
	tick := time.NewTicker(time.Second)
	end := time.NewTimer(*dur)
	last, lastT := int64(0), start
loop:
	for {
		select {
		case <-tick.C:
			if *asJSON {
				continue
			}
			n := count.Load()
			now := time.Now()
			rate := float64(n-last) / now.Sub(lastT).Seconds()
			last, lastT = n, now
			line := fmt.Sprintf("%5.1fs  %9.0f calls/s  %10d calls", now.Sub(start).Seconds(), rate, n)
			if tty {
				fmt.Fprintf(stdout, "\r%s", line)
			} else {
				fmt.Fprintln(stdout, line)
			}
		case <-end.C:
			break loop
		}
	}
	tick.Stop()
	done.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if tty {
		fmt.Fprintln(stdout)
	}
	var all []time.Duration
	total := map[string]int{}
	for w := range lats {
		all = append(all, lats[w]...)
		for e, n := range errs[w] {
			total[e.String()] += n
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(q float64) float64 { return float64(percentile(all, q)) / 1e3 }
	sum := benchSummary{Target: dst.String(), Call: *call, Callers: *callers, Seconds: elapsed.Seconds(), Calls: len(all),
		Errors: total, Throughput: float64(len(all)) / elapsed.Seconds(), P50us: pct(0.5), P90us: pct(0.9), P99us: pct(0.99),
		P999us: pct(0.999), MaxUs: pct(1)}
	if *csvPath != "" {
		if err := writeCSV(*csvPath, lats); err != nil {
			fmt.Fprintf(stderr, "rfcctl: bench -csv: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		printJSON(stdout, sum)
	} else {
		fmt.Fprintf(stdout, "%d calls in %.2fs: %.0f calls/s, %d callers, call %s\n", sum.Calls, sum.Seconds, sum.Throughput, sum.Callers, sum.Call)
		fmt.Fprintf(stdout, "latency µs: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", sum.P50us, sum.P90us, sum.P99us, sum.P999us, sum.MaxUs)
		if len(total) > 0 {
			fmt.Fprintf(stdout, "errors: %v\n", total)
		}
		histogram(stdout, all)
	}
	if len(all) == 0 {
		return 1
	}
	return 0
}

// histogram prints an ASCII histogram of latencies in power-of-two
// microsecond buckets.
func histogram(w io.Writer, sorted []time.Duration) {
	if len(sorted) == 0 {
		return
	}
	var buckets [32]int
	for _, d := range sorted {
		us := int(d / time.Microsecond)
		b := 0
		for us > 1 && b < len(buckets)-1 {
			us >>= 1
			b++
		}
		buckets[b]++
	}
	max := 0
	first, lastB := -1, 0
	for i, c := range buckets {
		if c > 0 {
			if first < 0 {
				first = i
			}
			lastB = i
		}
		if c > max {
			max = c
		}
	}
	for i := first; i <= lastB; i++ {
		bar := strings.Repeat("#", (buckets[i]*50+max-1)/max)
		fmt.Fprintf(w, "%8s - %-8s %8d %s\n", fmtUs(1<<i), fmtUs(1<<(i+1)), buckets[i], bar)
	}
}

func fmtUs(us int) string {
	switch {
	case us >= 1000000:
		return fmt.Sprintf("%ds", us/1000000)
	case us >= 1000:
		return fmt.Sprintf("%dms", us/1000)
	}
	return fmt.Sprintf("%dµs", us)
}

func writeCSV(path string, lats [][]time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, "caller,latency_us")
	for w, l := range lats {
		for _, d := range l {
			fmt.Fprintf(f, "%d,%.1f\n", w, float64(d)/1e3)
		}
	}
	return f.Close()
}
