package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPU     string
	Cores   int
	Go      string
	OS      string
	Date    string
	Command string
}

// ThisMachine reads the CPU model from /proc/cpuinfo where there is one.
func ThisMachine(command string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Command: command, CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }

// WriteCallsMarkdown writes the calls table: one row per system and shape,
// with ratios against fastcall.
func WriteCallsMarkdown(w io.Writer, rs []CallResult) { WriteCallsTable(w, rs, "fastcall") }

// WriteCallsTable writes one row per system and shape, with the ratios
// base ÷ system of throughput and p50, base being the system named base on
// the same shape.
func WriteCallsTable(w io.Writer, rs []CallResult, base string) {
	fmt.Fprintf(w, "| shape | system | calls/s (min–max) | p50 µs (min–max) | p99 µs | p99.9 µs | allocs/call | %s ÷ system: throughput | p50 | p99 |\n", base)
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		var fc *CallResult
		for i := range rs {
			if rs[i].System == base && rs[i].Shape == r.Shape {
				fc = &rs[i]
			}
		}
		tpRatio, p50Ratio, p99Ratio := "", "", ""
		if fc != nil && r.Throughput > 0 && r.P50 > 0 && r.P99 > 0 {
			tpRatio = fmtRatio(fc.Throughput / r.Throughput)
			p50Ratio = fmtRatio(float64(fc.P50) / float64(r.P50))
			p99Ratio = fmtRatio(float64(fc.P99) / float64(r.P99))
		}
		errs := ""
		if r.Errors > 0 {
			errs = fmt.Sprintf(" (%d errors)", r.Errors)
		}
		allocs := fmt.Sprintf("%.3f", r.AllocsPerCall)
		if r.AllocsPerCall < 0 {
			allocs = "n/a"
		}
		fmt.Fprintf(w, "| %s | %s%s | %.0f (%.0f–%.0f) | %s (%s–%s) | %s | %s | %s | %s | %s | %s |\n",
			shapeName(r.Shape), r.System, errs, r.Throughput, r.ThroughputMin, r.ThroughputMax,
			us(r.P50), us(r.P50Min), us(r.P50Max), us(r.P99), us(r.P999), allocs, tpRatio, p50Ratio, p99Ratio)
	}
}

// LatencySVG draws the latency distributions (CDF, log-scale time axis) of
// the results of one shape.
func LatencySVG(title string, rs []CallResult) string {
	const W, H, L, R, T, B = 720, 360, 60, 160, 30, 40
	colors := []string{"#888888", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rs {
		if len(r.Latencies) == 0 {
			continue
		}
		lo = math.Min(lo, float64(r.Latencies[0]))
		hi = math.Max(hi, float64(r.Latencies[len(r.Latencies)*999/1000]))
	}
	if math.IsInf(lo, 0) || hi <= lo {
		lo, hi = 1e3, 1e6
	}
	lo, hi = math.Log10(lo), math.Log10(hi)
	x := func(ns float64) float64 {
		v := (math.Log10(ns) - lo) / (hi - lo)
		return L + math.Max(0, math.Min(1, v))*float64(W-L-R)
	}
	y := func(q float64) float64 { return float64(H-B) - q*float64(H-T-B) }
	var sb strings.Builder
	svgFrame(&sb, W, H, L, R, T, B, title)
	logTicks(lo, hi, func(ns float64) {
		px := x(ns)
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px, T, px, H-B)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px, H-B+15, fmtNs(ns))
	})
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
		fmt.Fprintf(&sb, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", L-5, y(q)+4, q)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", L, y(q), W-R, y(q))
	}
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">latency (log scale)</text>`+"\n", (W-R+L)/2, H-5)
	for i, r := range rs {
		c := colors[i%len(colors)]
		n := len(r.Latencies)
		if n == 0 {
			continue
		}
		var pts strings.Builder
		const steps = 200
		for s := 0; s <= steps; s++ {
			q := float64(s) / steps
			idx := int(q * float64(n-1))
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(float64(r.Latencies[idx])), y(q))
		}
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, pts.String())
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			W-R+10, T+20*i, c, W-R+28, T+20*i+11, r.System)
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}

// svgFrame starts a chart of w×h pixels with margins l, r, t and b: the
// white background, the title and the two axes.
func svgFrame(sb *strings.Builder, w, h, l, r, t, b int, title string) {
	fmt.Fprintf(sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(sb, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(sb, `<text x="%d" y="18" font-size="14">%s</text>`+"\n", l, title)
	fmt.Fprintf(sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", l, h-b, w-r, h-b)
	fmt.Fprintf(sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", l, t, l, h-b)
}

// logTicks calls tick with each value of 1, 2 or 5 times a power of ten
// whose log10 lies in [lo, hi], in ascending order: the ticks of a log
// axis.
func logTicks(lo, hi float64, tick func(v float64)) {
	for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) < lo || math.Log10(v) > hi {
				continue
			}
			tick(v)
		}
	}
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%gms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%gµs", ns/1e3)
	}
	return fmt.Sprintf("%gns", ns)
}

// WriteTable writes a markdown table; the first two columns are left
// aligned, the others right aligned.
func WriteTable(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---:"
		if i < 2 {
			sep[i] = "---"
		}
	}
	fmt.Fprintln(w, "|"+strings.Join(sep, "|")+"|")
	for _, r := range rows {
		fmt.Fprintln(w, "| "+strings.Join(r, " | ")+" |")
	}
}

func ratio(num, den float64) string {
	if num <= 0 || den <= 0 {
		return ""
	}
	return fmtRatio(num / den)
}

func fmtRatio(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f×", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f×", v)
	}
	return fmt.Sprintf("%.4f×", v)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// callTarget is one comparison the calls case is held to: system against
// base on the shapes with callers callers (0: every shape), with the
// bounds its ratios (system ÷ base) must keep; a zero bound is not held.
type callTarget struct {
	system, base string
	callers      int
	minTput      float64 // throughput ratio at least
	maxP50       float64 // p50 ratio at most
	maxP99       float64 // p99 ratio at most
}

// callTargets are the calls case's targets.
var callTargets = []callTarget{
	{DeadlineSystem, FastcallSystem, 0, 0.9, 0, 1.2},
	{DeadlineLongSystem, FastcallSystem, 0, 0.9, 0, 1.2},
	{KeyedSystem, FastcallSystem, 32, 0.9, 0, 0},
	{FastcallChildSys, RawChildSystem, 1, 0, 1.3, 0},
	{FastcallChildSys, RawChildSystem, 32, 1.0, 0, 0},
}

// WriteCallTargets writes, for each target and shape, the ratios system ÷
// base of one run and whether the target is met.
func WriteCallTargets(w io.Writer, rs []CallResult) {
	find := func(name string, sh Shape) *CallResult {
		for i := range rs {
			if rs[i].System == name && rs[i].Shape == sh {
				return &rs[i]
			}
		}
		return nil
	}
	var rows [][]string
	for _, t := range callTargets {
		for _, sh := range CallShapes {
			if t.callers != 0 && sh.Callers != t.callers {
				continue
			}
			s, b := find(t.system, sh), find(t.base, sh)
			if s == nil || b == nil || b.Throughput <= 0 || b.P50 <= 0 || b.P99 <= 0 {
				continue
			}
			tp := s.Throughput / b.Throughput
			p50 := float64(s.P50) / float64(b.P50)
			p99 := float64(s.P99) / float64(b.P99)
			var want []string
			met := true
			if t.minTput > 0 {
				want = append(want, fmt.Sprintf("throughput ≥ %.2f×", t.minTput))
				met = met && tp >= t.minTput
			}
			if t.maxP50 > 0 {
				want = append(want, fmt.Sprintf("p50 ≤ %.2f×", t.maxP50))
				met = met && p50 <= t.maxP50
			}
			if t.maxP99 > 0 {
				want = append(want, fmt.Sprintf("p99 ≤ %.2f×", t.maxP99))
				met = met && p99 <= t.maxP99
			}
			verdict := "met"
			if !met {
				verdict = "NOT met"
			}
			rows = append(rows, []string{shapeName(sh), t.system + " ÷ " + t.base,
				fmtRatio(tp), fmtRatio(p50), fmtRatio(p99), strings.Join(want, ", "), verdict})
		}
	}
	WriteTable(w, []string{"shape", "system ÷ base", "throughput", "p50", "p99", "target", "this run"}, rows)
}
