// Command fcbench runs fastcall's benchmark cases side by side with the
// systems users would pick instead, and writes bench/RESULTS.md and SVG
// charts. `make bench` runs it; `make bench CASE=calls` runs one case.
//
// Cases: calls, loss, shm, lock, dispatch, detection, route,
// registry, regscale, dispatchscale. Peers that need other modules (gRPC-go for calls,
// hashicorp/memberlist for detection) run as `go run` programs of the
// nested module bench/peers; when that fails (no module download, say) the
// case notes it in RESULTS.md and goes on.
//
// -systems picks some of the calls case's systems by short key (their
// names hold commas): raw, raw-handoff, fastcall, deadline-call,
// deadline-caller, keyed, netrpc, raw-child, fastcall-child, and grpc for
// the gRPC-go peer; `-case calls -systems raw-child,fastcall-child` runs
// the two cross-process rows alone. A run of some systems is a partial
// run (results under the temporary directory unless -out is given); an
// unknown key stops fcbench with exit status 2 before anything runs.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fastcall/bench"
)

// allCases in the order they run and appear in RESULTS.md.
var allCases = []string{"calls", "loss", "shm", "lock", "dispatch", "detection", "route", "registry", "regscale", "dispatchscale", "scale"}

func main() {
	if bench.ChildMain() {
		return
	}
	os.Exit(run(os.Args[1:]))
}

// section is one case's part of RESULTS.md and of the JSON output.
type section struct {
	md   bytes.Buffer
	data any
}

func run(args []string) int {
	fs := flag.NewFlagSet("fcbench", flag.ContinueOnError)
	cases := fs.String("case", "all", "cases to run, comma-separated: "+strings.Join(allCases, ", ")+" (or all)")
	dur := fs.Duration("d", time.Second, "measured time per round")
	warm := fs.Duration("warmup", 300*time.Millisecond, "warm-up before each round")
	rounds := fs.Int("rounds", 3, "rounds per system and shape (median reported)")
	trials := fs.Int("trials", 20, "detection: SIGKILL trials per system")
	interval := fs.Duration("interval", 100*time.Millisecond, "detection: probe interval of both detectors")
	agents := fs.String("agents", joinInts(bench.RegScaleCounts), "regscale: agent counts, comma-separated")
	targets := fs.String("targets", joinInts(bench.DispatchScaleCounts), "dispatchscale: target counts, comma-separated")
	scaleN := fs.String("scale-n", bench.ScaleSizes, "scale: cluster sizes, comma-separated")
	scaleRun := fs.Duration("scale-run", 30*time.Second, "scale: measured run per system, size and CPU setting")
	scaleInterval := fs.Duration("scale-interval", 200*time.Millisecond, "scale: probe interval of both systems")
	scaleBusy := fs.Int("scale-busy", 2, "scale: goroutines spinning in the saturated runs (0: idle runs only; at most 64)")
	peers := fs.String("peers", "bench/peers", "directory of the nested module with the peer programs")
	outDir := fs.String("out", "bench", "directory for RESULTS.md and charts")
	systems := fs.String("systems", "all", "calls: systems to run, comma-separated: "+strings.Join(bench.SystemKeys, ", ")+", "+grpcKey+" (or all)")
	asJSON := fs.Bool("json", false, "print the results as JSON on stdout instead of the markdown")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 || *dur <= 0 || *warm < 0 || *trials < 1 || *interval <= 0 {
		fmt.Fprintln(os.Stderr, "fcbench: -rounds >= 1, -d > 0, -warmup >= 0, -trials >= 1, -interval > 0")
		return 2
	}
	want := map[string]bool{}
	for _, c := range strings.Split(*cases, ",") {
		c = strings.TrimSpace(c)
		known := c == "all"
		for _, k := range allCases {
			if c == k || c == "all" {
				want[k], known = true, true
			}
		}
		if !known {
			fmt.Fprintf(os.Stderr, "fcbench: unknown case %q (%s, all)\n", c, strings.Join(allCases, ", "))
			return 2
		}
	}
	if bench.RegScaleCounts = parseCounts(*agents); bench.RegScaleCounts == nil {
		fmt.Fprintln(os.Stderr, "fcbench: -agents wants positive counts, comma-separated")
		return 2
	}
	if ns := parseCounts(*scaleN); ns == nil || slices.Min(ns) < 2 || *scaleRun <= 0 || *scaleInterval <= 0 || *scaleBusy < 0 || *scaleBusy > bench.ScaleMaxBusy {
		fmt.Fprintf(os.Stderr, "fcbench: -scale-n wants sizes of at least 2, comma-separated; -scale-run > 0, -scale-interval > 0, -scale-busy from 0 to %d\n", bench.ScaleMaxBusy)
		return 2
	}
	if bench.DispatchScaleCounts = parseCounts(*targets); bench.DispatchScaleCounts == nil {
		fmt.Fprintln(os.Stderr, "fcbench: -targets wants positive counts, comma-separated")
		return 2
	}
	keys, grpc, err := parseSystems(*systems)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fcbench: -systems: %v\n", err)
		return 2
	}
	o := bench.Options{Warmup: *warm, Duration: *dur, Rounds: *rounds}
	cmdline := strings.TrimSpace("go run ./bench/cmd/fcbench " + strings.Join(args, " "))
	m := bench.ThisMachine(cmdline)
	full := keys == nil && grpc
	for _, c := range allCases {
		full = full && want[c]
	}
	outSet := false
	fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	*outDir = resultsDir(*outDir, outSet, full)
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "fcbench: %v\n", err)
		return 1
	}
	env := &runEnv{o: o, outDir: *outDir, peers: *peers, trials: *trials, interval: *interval,
		systems: keys, grpc: grpc,
		scale:    scaleOpts{n: *scaleN, run: *scaleRun, interval: *scaleInterval, busy: *scaleBusy},
		progress: func(s string) { fmt.Fprintln(os.Stderr, s) }}
	start := time.Now()
	var md bytes.Buffer
	out := map[string]any{"machine": m, "options": o}
	var body bytes.Buffer
	failed := false
	for _, c := range allCases {
		if !want[c] {
			continue
		}
		t0 := time.Now()
		s, err := runners[c](env)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fcbench: %s: %v\n", c, err)
			fmt.Fprintf(&body, "## %s\n\nNot measured: %v\n\n", c, err)
			out[c] = map[string]string{"error": err.Error()}
			failed = true
			continue
		}
		fmt.Fprintf(os.Stderr, "fcbench: %s done in %v\n", c, time.Since(t0).Round(time.Second))
		body.Write(s.md.Bytes())
		out[c] = s.data
	}
	fmt.Fprintf(&md, "# fastcall benchmark results\n\nProduced by `%s` on %s (%s in all).\n\n", m.Command, m.Date,
		time.Since(start).Round(time.Second))
	fmt.Fprintf(&md, "- CPU: %s, %d cores\n- Go: %s, %s\n", m.CPU, m.Cores, m.Go, m.OS)
	fmt.Fprintf(&md, "- Unless a case says otherwise, each figure is the median of %d rounds of %s after %s of warm-up; rounds of the systems are interleaved, and the spread (min–max) of the rounds is shown. Clients and servers run in one process on loopback unless a row says otherwise.\n",
		o.Rounds, o.Duration, o.Warmup)
	fmt.Fprintf(&md, "- Ratios are fastcall's figure divided by the other system's (for times, below 1× means fastcall is faster; for throughputs, above 1×).\n\n")
	md.Write(body.Bytes())
	md.Write(keptSection(filepath.Join(*outDir, "RESULTS.md")))
	if err := os.WriteFile(filepath.Join(*outDir, "RESULTS.md"), md.Bytes(), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "fcbench: %v\n", err)
		return 1
	}
	if !full {
		fmt.Fprintf(os.Stderr, "fcbench: partial run, results and charts in %s\n", *outDir)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Println(string(b))
	} else {
		os.Stdout.Write(md.Bytes())
	}
	if failed {
		return 1
	}
	return 0
}

// resultsDir says where a run writes RESULTS.md and its charts: the -out
// directory when it was given; otherwise bench/ for a full run, and for a
// partial run a directory under the system's temporary directory, so that a
// partial run does not overwrite the full results and charts.
func resultsDir(out string, outSet bool, full bool) string {
	if outSet || full {
		return out
	}
	return filepath.Join(os.TempDir(), "fcbench")
}

// keptHeading starts the part of RESULTS.md that no case produces: the
// A/B runs that decide whether a speed mechanism of the engine stays,
// made with builds of the code with and without it. A run keeps it.
const keptHeading = "## Speed mechanisms"

// keptSection returns the kept part of the RESULTS.md at path, from
// keptHeading to the end, or nothing when there is none.
func keptSection(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	i := bytes.Index(b, []byte("\n"+keptHeading+"\n"))
	if i < 0 {
		return nil
	}
	return b[i+1:]
}

// grpcKey names the gRPC-go peer among -systems' keys: it runs in the
// nested module, not among bench.Systems.
const grpcKey = "grpc"

// parseSystems reads -systems: "all", or keys of bench.SystemKeys and
// grpcKey, comma-separated. It returns the calls systems' keys (nil for
// all of them) and whether gRPC-go runs; a key it does not know, or no key,
// is an error naming the known ones.
func parseSystems(spec string) (keys []string, grpc bool, err error) {
	if strings.TrimSpace(spec) == "all" {
		return nil, true, nil
	}
	keys = []string{}
	for _, k := range strings.Split(spec, ",") {
		k = strings.TrimSpace(k)
		if k == grpcKey {
			grpc = true
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 && !grpc {
		return nil, false, fmt.Errorf("no system named (%s, %s, all)", strings.Join(bench.SystemKeys, ", "), grpcKey)
	}
	if _, err := bench.SystemsOf(keys); err != nil {
		return nil, false, fmt.Errorf("%v; or %s, all", err, grpcKey)
	}
	return keys, grpc, nil
}
