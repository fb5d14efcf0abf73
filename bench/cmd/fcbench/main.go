// Command fcbench runs fastcall's benchmark cases side by side with the
// systems users would pick instead, and writes bench/RESULTS.md and SVG
// charts. `make bench` runs it; `make bench CASE=calls` runs one case.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fastcall/bench"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("fcbench", flag.ContinueOnError)
	cases := fs.String("case", "all", "cases to run, comma-separated: calls, coalesce (or all)")
	dur := fs.Duration("d", 2*time.Second, "measured time per round")
	warm := fs.Duration("warmup", 500*time.Millisecond, "warm-up before each round")
	rounds := fs.Int("rounds", 3, "rounds per system and shape (median reported)")
	outDir := fs.String("out", "bench", "directory for RESULTS.md and charts")
	asJSON := fs.Bool("json", false, "print results as JSON on stdout as well")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 || *dur <= 0 || *warm < 0 {
		fmt.Fprintln(os.Stderr, "fcbench: -rounds >= 1, -d > 0, -warmup >= 0")
		return 2
	}
	want := map[string]bool{}
	for _, c := range strings.Split(*cases, ",") {
		switch c {
		case "all":
			want["calls"] = true
			want["coalesce"] = true
		case "calls", "coalesce":
			want[c] = true
		default:
			fmt.Fprintf(os.Stderr, "fcbench: unknown case %q (calls, coalesce, all)\n", c)
			return 2
		}
	}
	o := bench.Options{Warmup: *warm, Duration: *dur, Rounds: *rounds}
	cmdline := "go run ./bench/cmd/fcbench " + strings.Join(args, " ")
	m := bench.ThisMachine(strings.TrimSpace(cmdline))
	var md bytes.Buffer
	fmt.Fprintf(&md, "# fastcall benchmark results\n\nProduced by `%s` on %s.\n\n", m.Command, m.Date)
	fmt.Fprintf(&md, "- CPU: %s, %d cores\n- Go: %s, %s\n- Each figure is the median of %d rounds of %s after %s of warm-up; rounds of the systems are interleaved. Client and server run in one process on loopback.\n\n",
		m.CPU, m.Cores, m.Go, m.OS, o.Rounds, o.Duration, o.Warmup)
	out := map[string]any{"machine": m}
	progress := func(s string) { fmt.Fprintln(os.Stderr, s) }
	if want["calls"] {
		rs, err := bench.RunCalls(bench.Systems(), bench.CallShapes, o, progress)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fcbench: calls: %v\n", err)
			return 1
		}
		fmt.Fprintln(&md, "## calls: echo of a payload, one request datagram and one reply")
		fmt.Fprintln(&md)
		bench.WriteCallsMarkdown(&md, rs)
		fmt.Fprintln(&md)
		for _, sh := range bench.CallShapes {
			var group []bench.CallResult
			for _, r := range rs {
				if r.Shape == sh {
					group = append(group, r)
				}
			}
			name := fmt.Sprintf("calls-%dx%d.svg", sh.Callers, sh.Size)
			title := fmt.Sprintf("latency CDF, %d caller(s), %d B", sh.Callers, sh.Size)
			if err := os.WriteFile(filepath.Join(*outDir, name), []byte(bench.LatencySVG(title, group)), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "fcbench: %v\n", err)
				return 1
			}
			fmt.Fprintf(&md, "![%s](%s)\n\n", title, name)
		}
		out["calls"] = rs
	}
	if want["coalesce"] {
		rs, err := bench.RunCalls(bench.CoalesceSystems(), []bench.Shape{{Callers: 1, Size: 64}, {Callers: 32, Size: 64}}, o, progress)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fcbench: coalesce: %v\n", err)
			return 1
		}
		fmt.Fprintln(&md, "## coalesce: client-side coalescing of concurrent callers' sends (Config.CoalesceSends)")
		fmt.Fprintln(&md)
		bench.WriteCallsMarkdown(&md, rs)
		fmt.Fprintln(&md)
		out["coalesce"] = rs
	}
	if err := os.WriteFile(filepath.Join(*outDir, "RESULTS.md"), md.Bytes(), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "fcbench: %v\n", err)
		return 1
	}
	os.Stdout.Write(md.Bytes())
	if *asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Println(string(b))
	}
	return 0
}
