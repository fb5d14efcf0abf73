package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strings"
	"time"

	"fastcall/node/dispatch"
	"fastcall/rfc"
	"fastcall/wire"
)

// The dispatch case: targets whose handler takes dispatchWork, on a
// worker (not Inline).
const (
	dispatchWork = 10 * time.Millisecond
	callWork     = wire.CallUserBase + 1 // i64 ms -> (): sleeps on a worker
)

// DispatchCounts are the target counts of the fan-out chart; the table
// shows every one.
var DispatchCounts = []int{10, 100, 300, 1000}

// DispatchPoint is one target count: parallel fan-out (median and spread
// over rounds) and the serial loop (one run: it takes count × 10 ms).
type DispatchPoint struct {
	Targets                      int
	Fanout, FanoutMin, FanoutMax time.Duration
	Serial                       time.Duration
}

// startDispatchTargets starts n light endpoints serving callWork.
func startDispatchTargets(n int) ([]*rfc.Endpoint, error) {
	eps := make([]*rfc.Endpoint, 0, n)
	for i := 0; i < n; i++ {
		ep, err := rfc.Listen(lightConfig(uint32(1000+i), 32, 16, 64))
		if err != nil {
			closeAll(eps)
			return nil, err
		}
		eps = append(eps, ep)
		if err := ep.Register(callWork, "work", wire.Schema{wire.TypeInt64}, 0, func(r *rfc.Request, _ *wire.Params) wire.Errno {
			time.Sleep(time.Duration(r.Param(0).Int64()) * time.Millisecond)
			return wire.OK
		}); err != nil {
			closeAll(eps)
			return nil, err
		}
	}
	return eps, nil
}

// lightConfig configures one of many endpoints of a process (targets,
// agents) as node: one worker, a queue of queue requests, pending calls
// and duplicate-cache entries as given, small read batches, no logging.
func lightConfig(node uint32, queue, pending, dups int) rfc.Config {
	cfg := rfc.DefaultConfig()
	cfg.NodeID = node
	cfg.Logger = quiet()
	cfg.Workers = 1
	cfg.QueueLen = queue
	cfg.MaxPending = pending
	cfg.DupEntries = dups
	cfg.BatchSize = 8
	return cfg
}

func closeAll(eps []*rfc.Endpoint) {
	for _, ep := range eps {
		ep.Close()
	}
}

func workParams() *wire.Params {
	var p wire.Params
	p.Reset(make([]byte, 32))
	p.Int64(int64(dispatchWork / time.Millisecond))
	return &p
}

func fanoutOnce(d *dispatch.Dispatcher, addrs []netip.AddrPort) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	op := &dispatch.Op{Resource: "bench/fanout", Kind: dispatch.KindUpdate, Call: dispatch.CallOf(callWork, workParams()),
		Deadline: 5 * time.Second}
	for _, a := range addrs {
		op.Targets = append(op.Targets, dispatch.Target{Addr: a})
	}
	start := time.Now()
	id, err := d.Submit(ctx, op)
	if err != nil {
		return 0, err
	}
	st, err := d.Wait(ctx, id)
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if st.Failed != 0 || st.Done != len(addrs) {
		return 0, fmt.Errorf("fan-out to %d: %d done, %d failed", len(addrs), st.Done, st.Failed)
	}
	return took, nil
}

func serialOnce(ep *rfc.Endpoint, addrs []netip.AddrPort) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := workParams()
	start := time.Now()
	for _, a := range addrs {
		if err := ep.Call(ctx, a, callWork, p, nil); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// RunDispatch measures one operation (Submit to Wait) fanned out by
// node/dispatch to each target count, against a loop calling the same
// targets one after another, every target in this process.
func RunDispatch(o Options, progress func(string)) ([]DispatchPoint, error) {
	max := DispatchCounts[len(DispatchCounts)-1]
	targets, err := startDispatchTargets(max)
	if err != nil {
		return nil, err
	}
	defer closeAll(targets)
	addrs := make([]netip.AddrPort, len(targets))
	for i, ep := range targets {
		addrs[i] = ep.Addr()
	}
	d, ep, err := startDispatcher()
	if err != nil {
		return nil, err
	}
	defer ep.Close()
	defer d.Close()
	if _, err := fanoutOnce(d, addrs); err != nil { // warm up peers and buffers
		return nil, err
	}
	var out []DispatchPoint
	for _, n := range DispatchCounts {
		var fs []time.Duration
		for r := 0; r < max2(o.Rounds, 5); r++ {
			t, err := fanoutOnce(d, addrs[:n])
			if err != nil {
				return nil, err
			}
			fs = append(fs, t)
		}
		ser, err := serialOnce(ep, addrs[:n])
		if err != nil {
			return nil, err
		}
		med, lo, hi := medianD(fs)
		out = append(out, DispatchPoint{Targets: n, Fanout: med, FanoutMin: lo, FanoutMax: hi, Serial: ser})
		if progress != nil {
			progress(fmt.Sprintf("dispatch %d targets: fan-out %v, serial %v", n, med, ser))
		}
	}
	return out, nil
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// startDispatcher starts the dispatcher both dispatch cases measure:
// node/dispatch with its default configuration and an in-memory marker
// store, on an endpoint of its own (node 1). The caller closes the
// dispatcher, then the endpoint.
func startDispatcher() (*dispatch.Dispatcher, *rfc.Endpoint, error) {
	ep, err := newEndpoint(1)
	if err != nil {
		return nil, nil, err
	}
	cfg := dispatch.DefaultConfig()
	cfg.Logger = quiet()
	d, err := dispatch.Start(ep, cfg, dispatch.NewMemStore(0))
	if err != nil {
		ep.Close()
		return nil, nil, err
	}
	return d, ep, nil
}

// WriteDispatchMarkdown writes one row per target count.
func WriteDispatchMarkdown(w io.Writer, ps []DispatchPoint, rounds int) {
	var rows [][]string
	for _, p := range ps {
		rows = append(rows, []string{itoa(p.Targets), "node/dispatch fan-out", fmt.Sprintf("%s (%s–%s)", ms(p.Fanout), ms(p.FanoutMin), ms(p.FanoutMax)), "1.00×"})
		rows = append(rows, []string{itoa(p.Targets), "serial loop of calls", ms(p.Serial),
			fmt.Sprintf("%.3f× (fan-out %.1f× faster)", float64(p.Fanout)/float64(p.Serial), float64(p.Serial)/float64(p.Fanout))})
	}
	WriteTable(w, []string{"targets", "system", "time ms (min–max)", "fastcall ÷ system: time"}, rows)
	fmt.Fprintf(w, "\nFan-out: median of %d operations per count (Submit to Wait); serial loop: one run per count.\n", max2(rounds, 5))
}

// FanoutSVG draws fan-out and serial time against target count, both
// axes log scale.
func FanoutSVG(ps []DispatchPoint) string {
	const W, H, L, R, T, B = 720, 360, 70, 190, 30, 40
	var lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		for _, d := range []time.Duration{p.Fanout, p.Serial} {
			lo = math.Min(lo, float64(d))
			hi = math.Max(hi, float64(d))
		}
	}
	lo, hi = math.Log10(lo)-0.1, math.Log10(hi)+0.1
	nlo, nhi := math.Log10(float64(ps[0].Targets))-0.05, math.Log10(float64(ps[len(ps)-1].Targets))+0.05
	x := func(n int) float64 { return L + (math.Log10(float64(n))-nlo)/(nhi-nlo)*float64(W-L-R) }
	y := func(d float64) float64 { return float64(H-B) - (math.Log10(d)-lo)/(hi-lo)*float64(H-T-B) }
	var sb strings.Builder
	svgFrame(&sb, W, H, L, R, T, B, "time of one operation against target count (10 ms handler, log-log)")
	for _, p := range ps {
		px := x(p.Targets)
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px, T, px, H-B)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", px, H-B+15, p.Targets)
	}
	logTicks(lo, hi, func(ns float64) {
		py := y(ns)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", L, py, W-R, py)
		fmt.Fprintf(&sb, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", L-5, py+4, fmtNs(ns))
	})
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">targets (log scale)</text>`+"\n", (W-R+L)/2, H-5)
	series := []struct {
		name  string
		color string
		v     func(DispatchPoint) time.Duration
	}{
		{"node/dispatch fan-out", "#1f77b4", func(p DispatchPoint) time.Duration { return p.Fanout }},
		{"serial loop of calls", "#d62728", func(p DispatchPoint) time.Duration { return p.Serial }},
	}
	for i, s := range series {
		var pts strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.Targets), y(float64(s.v(p))))
		}
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, pts.String())
		for _, p := range ps {
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(p.Targets), y(float64(s.v(p))), s.color)
		}
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			W-R+10, T+20*i, s.color, W-R+28, T+20*i+11, s.name)
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}
