package main

import (
	"fmt"
	"path/filepath"
	"time"

	"fastcall/bench"
)

// scaleOpts are the scale case's flags.
type scaleOpts struct {
	n        string // cluster sizes, "16,64"
	run      time.Duration
	interval time.Duration
	busy     int // spinning goroutines of the saturated runs; 0: none
}

// runScale measures the heartbeat membership against hashicorp/memberlist
// at each cluster size, idle and with the process's CPU saturated, and
// charts CPU per member against N.
func runScale(e *runEnv) (*section, error) {
	all, err := bench.RunScale(e.peers, e.scale.n, e.scale.interval, e.scale.run, 0)
	if err != nil {
		return nil, err
	}
	// The saturated runs failing keeps the idle rows: the section notes
	// the failure.
	var busyErr error
	if e.scale.busy > 0 {
		var busy []bench.ScaleResult
		busy, busyErr = bench.RunScale(e.peers, e.scale.n, e.scale.interval, e.scale.run, e.scale.busy)
		all = append(all, busy...)
	}
	s := &section{data: all}
	fmt.Fprintln(&s.md, "## scale: failure detection at cluster size, real loopback, one process")
	fmt.Fprintln(&s.md)
	fmt.Fprintf(&s.md, "N members of node/heartbeat (heartbeat.DefaultConfig with a %v probe interval), then N of hashicorp/memberlist (DefaultLANConfig, ProbeInterval %v), in one process on loopback (the nested module's scale program, bench/peers/scale), each for %v after a settling time; no member dies. CPU: the process's, the spinning goroutines' own thread time taken out; datagrams: sent per member per probe interval; deaths: members declared dead by any member (all of them false); views not alive: (observer, member) pairs not alive at the end. The saturated rows run %d goroutines spinning for the whole run.\n",
		e.scale.interval, e.scale.interval, e.scale.run, e.scale.busy)
	fmt.Fprintln(&s.md)
	bench.WriteScaleMarkdown(&s.md, all)
	fmt.Fprintln(&s.md)
	if busyErr != nil {
		fmt.Fprintf(&s.md, "Saturated runs not measured: %v\n\n", busyErr)
	}
	svg, err := filepath.Abs(filepath.Join(e.outDir, "scale-cpu.svg"))
	if err != nil {
		return nil, err
	}
	if err := bench.ScaleChart(e.peers, svg, all); err != nil {
		fmt.Fprintf(&s.md, "Chart not drawn: %v\n\n", err)
		return s, nil
	}
	fmt.Fprintf(&s.md, "![CPU per member against N](%s)\n\n", "scale-cpu.svg")
	return s, nil
}
