package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"

	"fastcall/node/dispatch"
	"fastcall/rfc"
	"fastcall/wire"
)

// The dispatchscale case: one operation fanned out to many targets whose
// handler answers at once, the targets in a child process (this binary
// re-executed), so that this process's CPU time is the dispatcher's (and
// the loop that submits and waits).

// DispatchScaleCounts are the target counts measured.
var DispatchScaleCounts = []int{100, 1000}

const (
	dispatchScaleWarm = 5  // operations not measured
	dispatchScaleOps  = 50 // operations measured per count
	// dispatchScaleGap separates two operations: the targets' replies
	// of one are read before the next starts.
	dispatchScaleGap = 10 * time.Millisecond

	childDispatchTargets = "dispatchscale-targets" // the child job: N targets
	childCountEnv        = "FCBENCH_TARGETS"       // N
)

// DispatchScalePoint is one target count: the time from Submit until
// every target's reply is gathered (Wait returns), over the operations;
// this process's CPU time per operation; the dispatcher endpoint's
// datagrams per operation; and the datagrams the kernel dropped at the
// dispatcher's socket and at the targets' over the measured operations.
type DispatchScalePoint struct {
	Targets, Ops            int
	P50, P99, Max           time.Duration
	CPUPerOp                time.Duration
	TxPerOp, RxPerOp        float64
	DispatcherDrops, TDrops uint64
	SendBusy                uint64 // sends that waited for a free call slot
	FileLimit               uint64 // this process's soft limit of open files
	Load                    string
}

// dispatchTargetsChildMain is the child: N targets serving callWork, each
// its own endpoint on loopback; it prints its ready line with the N
// addresses, and stops when its standard input ends.
func dispatchTargetsChildMain() {
	n, err := strconv.Atoi(os.Getenv(childCountEnv))
	if err != nil || n < 1 {
		childFail(fmt.Errorf("bad %s", childCountEnv))
	}
	raiseFileLimit(uint64(n + 256))
	eps, err := startDispatchTargets(n)
	if err != nil {
		childFail(err)
	}
	addrs := make([]netip.AddrPort, len(eps))
	for i, ep := range eps {
		addrs[i] = ep.Addr()
	}
	printReady(addrs...)
	_, _ = io.Copy(io.Discard, os.Stdin)
	closeAll(eps)
}

// RunDispatchScale measures, for each target count, operations one after
// another, each fanned out to every target.
func RunDispatchScale(o Options, progress func(string)) ([]DispatchScalePoint, error) {
	return measureCounts(DispatchScaleCounts, measureDispatchScale, progress, func(n int, p DispatchScalePoint) string {
		return fmt.Sprintf("dispatchscale %d targets: p50 %v p99 %v, CPU %v per operation", n, p.P50, p.P99, p.CPUPerOp)
	})
}

func measureDispatchScale(n int) (DispatchScalePoint, error) {
	p := DispatchScalePoint{Targets: n, Ops: dispatchScaleOps, FileLimit: raiseFileLimit(1100)}
	tc, err := startServerChild(childDispatchTargets, n, childCountEnv+"="+itoa(n))
	if err != nil {
		return p, err
	}
	defer tc.stop()
	addrs := tc.addrs
	d, ep, err := startDispatcher()
	if err != nil {
		return p, err
	}
	defer ep.Close()
	defer d.Close()
	var ps wire.Params
	ps.Reset(make([]byte, 32))
	ps.Int64(0) // the targets answer at once
	op := &dispatch.Op{Resource: "bench/scale", Kind: dispatch.KindUpdate, Call: dispatch.CallOf(callWork, &ps), Deadline: 5 * time.Second}
	for _, a := range addrs {
		op.Targets = append(op.Targets, dispatch.Target{Addr: a})
	}
	dispAddr := ep.Addr()
	isDisp := func(a netip.AddrPort) bool { return a == dispAddr }
	isTarget := func(a netip.AddrPort) bool {
		_, ok := slices.BinarySearchFunc(addrs, a, netip.AddrPort.Compare)
		return ok
	}
	slices.SortFunc(addrs, netip.AddrPort.Compare)
	var lat []time.Duration
	var st0 rfc.Stats
	var cpu0 time.Duration
	var drops0 [2]uint64
	var busy0 uint64
	for k := 0; k < dispatchScaleWarm+dispatchScaleOps; k++ {
		if k == dispatchScaleWarm {
			st0, cpu0, busy0 = ep.Stats(), cpuOfProcess(), d.Stats().SendBusy
			drops0 = [2]uint64{udpDrops(isDisp), udpDrops(isTarget)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		id, err := d.Submit(ctx, op)
		if err != nil {
			cancel()
			return p, fmt.Errorf("dispatchscale: Submit to %d: %v", n, err)
		}
		s, err := d.Wait(ctx, id)
		took := time.Since(start)
		cancel()
		if err != nil {
			return p, fmt.Errorf("dispatchscale: Wait: %v", err)
		}
		if s.Failed != 0 || s.Done != n {
			return p, fmt.Errorf("dispatchscale: fan-out to %d: %d done, %d failed", n, s.Done, s.Failed)
		}
		if k >= dispatchScaleWarm {
			lat = append(lat, took)
		}
		time.Sleep(dispatchScaleGap)
	}
	st1, cpu1 := ep.Stats(), cpuOfProcess()
	p.DispatcherDrops, p.TDrops = udpDrops(isDisp)-drops0[0], udpDrops(isTarget)-drops0[1]
	p.SendBusy = d.Stats().SendBusy - busy0
	slices.Sort(lat)
	smp := Sample{Latencies: lat}
	p.P50, p.P99, p.Max = smp.Percentile(0.5), smp.Percentile(0.99), lat[len(lat)-1]
	p.CPUPerOp = (cpu1 - cpu0) / time.Duration(dispatchScaleOps)
	p.TxPerOp = float64(st1.Tx-st0.Tx) / dispatchScaleOps
	p.RxPerOp = float64(st1.Rx-st0.Rx) / dispatchScaleOps
	p.Load = loadAverage()
	return p, nil
}

// WriteDispatchScaleMarkdown writes one row per target count, and the
// ratio of the largest count to the smallest.
func WriteDispatchScaleMarkdown(w io.Writer, ps []DispatchScalePoint) {
	var rows [][]string
	for _, p := range ps {
		rows = append(rows, []string{itoa(p.Targets), itoa(p.Ops), ms(p.P50), ms(p.P99), ms(p.Max), ms(p.CPUPerOp),
			fmt.Sprintf("%.0f / %.0f", p.TxPerOp, p.RxPerOp), fmt.Sprintf("%d / %d", p.DispatcherDrops, p.TDrops),
			fmt.Sprint(p.SendBusy), fmt.Sprint(p.FileLimit), p.Load})
	}
	WriteTable(w, []string{"targets", "operations", "all replies p50 ms", "p99 ms", "max ms", "dispatcher process CPU ms per operation",
		"dispatcher datagrams sent / received per operation", "kernel drops at dispatcher / targets", "sends that waited for a call slot",
		"open-file limit", "load average"}, rows)
	if len(ps) >= 2 {
		a, b := ps[0], ps[len(ps)-1]
		fmt.Fprintf(w, "\n%d targets ÷ %d targets: p50 %.1f×, p99 %.1f×, CPU per operation %.1f× (targets %.0f×).\n",
			b.Targets, a.Targets, float64(b.P50)/float64(a.P50), float64(b.P99)/float64(a.P99),
			float64(b.CPUPerOp)/float64(a.CPUPerOp), float64(b.Targets)/float64(a.Targets))
	}
}
