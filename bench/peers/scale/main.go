// Command scale measures what a failure detector costs as the cluster
// grows: N members on loopback in this one process, all alive, for a
// bounded run, with fastcall's node/heartbeat (DefaultConfig, the given
// interval) and hashicorp/memberlist (DefaultLANConfig, ProbeInterval set
// to the same interval) at the same N, one after the other in the same
// run. It reports the process CPU time (getrusage, user + system) per
// member per second, the datagrams each member sends per interval, and
// the false deaths (every death declared while nothing died, and the
// views not alive at the end). With -busy k, k goroutines spin for the
// whole run so the detectors compete for a saturated CPU.
//
//	go run ./scale -n 16,64,128,256 -run 8s -busy 0
//	go run ./scale -chart scale.svg idle.json busy.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"fastcall/bench"
)

var quiet = slog.New(slog.DiscardHandler)

// busyN is the number of spinners (-busy).
var busyN int

// result is one system at one N.
type result struct {
	System      string  `json:"system"`
	N           int     `json:"n"`
	Busy        int     `json:"busy"`
	RunS        float64 `json:"run_s"`
	CPUCores    float64 `json:"cpu_cores"`           // process CPU seconds per second, the spinners' taken out
	SpinCores   float64 `json:"spin_cores"`          // the spinners' CPU seconds per second
	CPUPerMemMs float64 `json:"cpu_ms_per_member_s"` // CPU ms per member per second
	DgramsPerMI float64 `json:"datagrams_per_member_interval"`
	Deaths      int     `json:"false_deaths"`    // deaths declared during the run (none died)
	Suspects    int     `json:"suspects"`        // suspicions raised during the run
	NotAlive    int     `json:"views_not_alive"` // member views not alive at the end
	Views       int     `json:"views"`           // N·(N-1)
	Load1Start  float64 `json:"load1_start"`
	Load1End    float64 `json:"load1_end"`
	Err         string  `json:"error,omitempty"`
	Note        string  `json:"note,omitempty"` // how the cluster came up, when not whole
}

// cluster is one system's N members.
type cluster interface {
	// counters returns the datagrams sent, deaths and suspicions so far.
	counters() (sent, deaths, suspects uint64)
	// notAlive counts the member views that are not alive.
	notAlive() int
	stop()
}

func main() {
	which := flag.String("system", "both", "fastcall, memberlist or both")
	ns := flag.String("n", "16,64,128,256", "cluster sizes")
	run := flag.Duration("run", 8*time.Second, "measured run per system and size")
	settle := flag.Duration("settle", 3*time.Second, "time after start before the measured run")
	interval := flag.Duration("interval", 200*time.Millisecond, "probe interval of both systems")
	busy := flag.Int("busy", 0, "goroutines spinning for the whole run (saturate the CPU)")
	asJSON := flag.Bool("json", false, "print the results as one JSON object")
	chart := flag.String("chart", "", "write an SVG chart of CPU per member against N from the -json outputs named as arguments, and exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	log.SetFlags(0)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *chart != "" {
		if err := writeChart(*chart, flag.Args()); err != nil {
			log.Fatal(err)
		}
		return
	}
	var stop atomic.Bool
	if *busy > len(spinCPU) {
		log.Fatalf("-busy at most %d", len(spinCPU))
	}
	busyN = *busy
	for i := 0; i < *busy; i++ {
		go spin(i, &stop)
	}
	var out []result
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			log.Fatalf("bad -n %q", f)
		}
		for _, sys := range systems(*which) {
			r, c := measure(sys, n, *interval, *settle, *run)
			r.Busy = *busy
			out = append(out, r)
			if !*asJSON {
				print(r)
			} else {
				// Each row as soon as it is measured, so that a run cut
				// short keeps what it measured.
				b, _ := json.Marshal(r)
				fmt.Fprintf(os.Stderr, "scale: %s N=%d done: %s\n", r.System, r.N, b)
			}
			if c != nil {
				// A collapsed cluster may not close at once (its sockets'
				// writes blocked): the run goes on after a bound.
				stopped := make(chan struct{})
				go func() { c.stop(); close(stopped) }()
				select {
				case <-stopped:
				case <-time.After(30 * time.Second):
					fmt.Fprintf(os.Stderr, "scale: %s N=%d not stopped after 30s; going on\n", r.System, r.N)
				}
			}
			runtime.GC()
		}
	}
	stop.Store(true)
	if *asJSON {
		b, _ := json.Marshal(map[string]any{"scale": out})
		fmt.Println(string(b))
	}
}

func systems(which string) []string {
	switch which {
	case "fastcall", "memberlist":
		return []string{which}
	}
	return []string{"fastcall", "memberlist"}
}

// spinCPU holds each spinner's own thread CPU time in nanoseconds, so
// the spinners' share can be taken out of the process CPU time.
var spinCPU [bench.ScaleMaxBusy]atomic.Int64

// spin burns CPU on its own OS thread until stop, publishing its thread's
// CPU time (getrusage RUSAGE_THREAD) in spinCPU[i].
func spin(i int, stop *atomic.Bool) {
	runtime.LockOSThread()
	x := uint64(1)
	for !stop.Load() {
		for j := 0; j < 1<<18; j++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		var ru syscall.Rusage
		if syscall.Getrusage(rusageThread, &ru) == nil {
			spinCPU[i].Store(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	_ = x
}

// rusageThread is RUSAGE_THREAD (Linux).
const rusageThread = 1

// spinnersCPU is the CPU time the spinners have used.
func spinnersCPU(n int) time.Duration {
	var t int64
	for i := 0; i < n && i < len(spinCPU); i++ {
		t += spinCPU[i].Load()
	}
	return time.Duration(t)
}

// measure runs one system at one size and returns the result and the
// cluster, still running (the caller stops it after reporting).
func measure(sys string, n int, interval, settle, run time.Duration) (result, cluster) {
	r := result{System: sys, N: n, Views: n * (n - 1), RunS: run.Seconds()}
	var c cluster
	var err error
	switch sys {
	case "fastcall":
		c, err = startFastcall(n, interval)
	default:
		c, err = startMemberlist(n, interval)
	}
	if err != nil {
		r.Err = err.Error()
		return r, nil
	}
	if sn, ok := c.(interface{ startNote() string }); ok {
		r.Note = sn.startNote()
	}
	fmt.Fprintf(os.Stderr, "scale: %s N=%d up, settling\n", sys, n)
	stopProgress := make(chan struct{})
	defer close(stopProgress)
	go progress(sys, n, c, stopProgress)
	time.Sleep(settle)
	r.Load1Start = load1()
	sent0, deaths0, sus0 := c.counters()
	cpu0, spin0, t0 := cpuTime(), spinnersCPU(busyN), time.Now()
	lag := sampleLag(run)
	cpu1, spin1, el := cpuTime(), spinnersCPU(busyN), time.Since(t0)
	r.SpinCores = (spin1 - spin0).Seconds() / el.Seconds()
	sent1, deaths1, sus1 := c.counters()
	r.Load1End = load1()
	r.CPUCores = (cpu1 - cpu0 - (spin1 - spin0)).Seconds() / el.Seconds()
	r.CPUPerMemMs = r.CPUCores * 1000 / float64(n)
	r.DgramsPerMI = float64(sent1-sent0) / float64(n) / (el.Seconds() / interval.Seconds())
	r.Deaths = int(deaths1 - deaths0)
	r.Suspects = int(sus1 - sus0)
	// A collapsed cluster may hold its locks for minutes: count the views
	// within a bound, else report -1.
	views := make(chan int, 1)
	go func() { views <- c.notAlive() }()
	select {
	case r.NotAlive = <-views:
	case <-time.After(20 * time.Second):
		r.NotAlive = -1
	}
	fmt.Fprintf(os.Stderr, "scale: %s N=%d timer lag (a %v ticker in this process): %s\n", sys, n, lagTick, lag)
	if d, ok := c.(interface{ detail() string }); ok {
		fmt.Fprintf(os.Stderr, "scale: %s N=%d totals since start: %s\n", sys, n, d.detail())
	}
	return r, c
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load1 is the one-minute load average.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func print(r result) {
	if r.Err != "" {
		fmt.Printf("%-10s N=%-4d busy=%d error: %s\n", r.System, r.N, r.Busy, r.Err)
		return
	}
	fmt.Printf("%-10s N=%-4d busy=%d (spinning %.2f cores) cpu %.3f cores (%.3f ms/member/s) datagrams/member/interval %.2f deaths %d suspects %d not-alive %d/%d load1 %.1f-%.1f %s\n",
		r.System, r.N, r.Busy, r.SpinCores, r.CPUCores, r.CPUPerMemMs, r.DgramsPerMI, r.Deaths, r.Suspects, r.NotAlive, r.Views, r.Load1Start, r.Load1End, r.Note)
}

// lagTick is the period of the lag sampler.
const lagTick = 10 * time.Millisecond

// sampleLag runs a ticker for d and returns how late its ticks came past
// their period (p50, p99, max, and how many were 50 ms or more late): the
// scheduling delay every timer in this process saw, the detectors' own
// included.
func sampleLag(d time.Duration) string {
	tk := time.NewTicker(lagTick)
	defer tk.Stop()
	var lags []time.Duration
	end := time.Now().Add(d)
	last := time.Now()
	for now := range tk.C {
		_ = now
		t := time.Now()
		lags = append(lags, max(0, t.Sub(last)-lagTick))
		last = t
		if t.After(end) {
			break
		}
	}
	if len(lags) == 0 {
		return "no tick"
	}
	slices.Sort(lags)
	over := 0
	for _, l := range lags {
		if l >= 50*time.Millisecond {
			over++
		}
	}
	q := func(f float64) time.Duration { return lags[min(len(lags)-1, int(f*float64(len(lags))))] }
	return fmt.Sprintf("p50 %v p99 %v max %v, %d of %d ticks 50ms+ late", q(0.5), q(0.99), lags[len(lags)-1], over, len(lags))
}

// progressEvery is the period of the progress lines.
const progressEvery = 5 * time.Second

// progress prints, every progressEvery until stop, what the cluster did
// in that period (datagrams, suspicions, deaths, and the system's own
// detail if it has one), so that the start of a collapse can be seen.
func progress(sys string, n int, c cluster, stop chan struct{}) {
	t0 := time.Now()
	sent0, deaths0, sus0 := c.counters()
	tk := time.NewTicker(progressEvery)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		sent, deaths, sus := c.counters()
		line := ""
		if p, ok := c.(interface{ progressDetail() string }); ok {
			line = p.progressDetail()
		}
		fmt.Fprintf(os.Stderr, "scale: %s N=%d at %4.0fs: datagrams %d suspicions %d deaths %d load1 %.1f %s\n", sys, n,
			time.Since(t0).Seconds(), sent-sent0, sus-sus0, deaths-deaths0, load1(), line)
		sent0, deaths0, sus0 = sent, deaths, sus
	}
}
