// Command detect measures failure detection: how long after a member
// process is killed (SIGKILL) another member declares it dead, and how many
// live members are falsely declared dead when one link loses datagrams.
// It runs fastcall's node/heartbeat and hashicorp/memberlist with the same
// probe interval side by side, three members each (observer, helper,
// victim), all on loopback; the victim runs in a child process (this
// binary, re-executed).
//
//	go run ./detect -trials 30 -interval 100ms -loss-run 120s
package main

import (
	"bufio"
	"encoding/json"
	"fastcall/bench"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

const (
	envRole = "DETECT_ROLE" // child: "fastcall" or "memberlist"
	envPeer = "DETECT_PEER" // child: comma-separated addresses of the other members
	envIntv = "DETECT_INTERVAL"

	childLife = 60 * time.Second // a child never outlives this
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// system is one failure detector under test.
type system interface {
	name() string
	// start brings up the observer and the helper in this process and
	// returns the addresses a victim joins.
	start(interval time.Duration) ([]string, error)
	// join tells the in-process members about the victim at addr.
	join(addr string) error
	// victimAlive reports whether the observer sees the victim alive.
	victimAlive() bool
	// waitDead blocks until the observer declares the victim dead and
	// returns when that happened, or false after limit.
	waitDead(limit time.Duration) (time.Time, bool)
	stop()
}

func main() {
	if role := os.Getenv(envRole); role != "" {
		runVictim(role)
		return
	}
	which := flag.String("system", "both", "fastcall, memberlist or both")
	trials := flag.Int("trials", 20, "SIGKILL trials per system")
	interval := flag.Duration("interval", 100*time.Millisecond, "probe interval")
	lossRun := flag.Duration("loss-run", 60*time.Second, "length of the lossy-link run per system (0: skip)")
	loss := flag.Float64("loss", 0.20, "loss rate on the lossy link, each way")
	asJSON := flag.Bool("json", false, "print the detection results as one JSON object instead of text (for fcbench)")
	flag.Parse()
	log.SetFlags(0)
	var results []detectionResult
	for _, s := range systems(*which) {
		if *trials > 0 {
			r := detection(s, *trials, *interval)
			results = append(results, r)
			if !*asJSON {
				r.print()
			}
		}
		if *lossRun > 0 {
			falseDeaths(s, *interval, *lossRun, *loss)
		}
	}
	if *asJSON {
		b, _ := json.Marshal(map[string]any{"detection": results})
		fmt.Println(string(b))
	}
}

// detectionResult is one system's detection times after SIGKILL.
type detectionResult struct {
	System   string
	Interval time.Duration
	Trials   int // attempted
	OK       int // trials that ended with the victim declared dead
	P50, P99 time.Duration
	Max      time.Duration
}

func (r detectionResult) print() {
	iv := func(d time.Duration) string {
		return fmt.Sprintf("%v (%.1f intervals)", d.Round(time.Millisecond), float64(d)/float64(r.Interval))
	}
	fmt.Printf("%-10s detection after SIGKILL, interval %v, %d/%d trials: p50 %s  p99 %s  max %s\n",
		r.System, r.Interval, r.OK, r.Trials, iv(r.P50), iv(r.P99), iv(r.Max))
}

func systems(which string) []func() system {
	var out []func() system
	if which == "fastcall" || which == "both" {
		out = append(out, func() system { return new(fastcallSystem) })
	}
	if which == "memberlist" || which == "both" {
		out = append(out, func() system { return new(memberlistSystem) })
	}
	return out
}

// detection runs SIGKILL trials and returns the detection time quantiles.
func detection(mk func() system, trials int, interval time.Duration) detectionResult {
	var ds []time.Duration
	name := ""
	for i := 0; i < trials; i++ {
		s := mk()
		name = s.name()
		d, err := trial(s, interval)
		s.stop()
		if err != nil {
			log.Printf("%s trial %d: %v", name, i, err)
			continue
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	smp := bench.Sample{Latencies: ds}
	return detectionResult{System: name, Interval: interval, Trials: trials, OK: len(ds),
		P50: smp.Percentile(0.50), P99: smp.Percentile(0.99), Max: smp.Percentile(1)}
}

func trial(s system, interval time.Duration) (time.Duration, error) {
	peers, err := s.start(interval)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envRole+"="+s.name(), envPeer+"="+strings.Join(peers, ","),
		envIntv+"="+interval.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		return 0, fmt.Errorf("victim not ready: %q %v", line, err)
	}
	if err := s.join(strings.TrimSpace(strings.TrimPrefix(line, "ready "))); err != nil {
		return 0, err
	}
	end := time.Now().Add(10 * time.Second)
	for !s.victimAlive() {
		if time.Now().After(end) {
			return 0, fmt.Errorf("victim never seen alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Steady state for a few intervals, then kill at a random phase.
	time.Sleep(5*interval + time.Duration(time.Now().UnixNano()%int64(interval)))
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		return 0, err
	}
	at, ok := s.waitDead(30 * interval)
	if !ok {
		return 0, fmt.Errorf("victim not declared dead within %v", 30*interval)
	}
	return at.Sub(killed), nil
}

// falseDeaths runs three members with one lossy link and counts deaths
// declared by any member (every member stays up).
func falseDeaths(mk func() system, interval, run time.Duration, loss float64) {
	s := mk()
	n, err := lossyRun(s, interval, run, loss)
	if err != nil {
		log.Printf("%s lossy run: %v", s.name(), err)
		return
	}
	hours := run.Hours()
	fmt.Printf("%-10s false deaths with %.0f%% loss on one link of 3 members, interval %v, run %v (%d intervals): %d (%.1f per hour)\n",
		s.name(), loss*100, interval, run, int(run/interval), n, float64(n)/hours)
}

func runVictim(role string) {
	peers := strings.Split(os.Getenv(envPeer), ",")
	interval, _ := time.ParseDuration(os.Getenv(envIntv))
	var addr string
	var err error
	switch role {
	case "fastcall":
		addr, err = fastcallVictim(peers, interval)
	case "memberlist":
		addr, err = memberlistVictim(peers, interval)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "victim:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %s\n", addr)
	time.Sleep(childLife)
}
