package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// GRPCSystem is the name of the gRPC-go rows in the calls table.
const GRPCSystem = "gRPC-go unary (separate process run, same machine)"

// runPeer runs `go run ./prog args...` in the nested module dir and
// decodes the JSON document it prints on its standard output into doc
// (nil: it prints none). Its standard error goes to ours (progress lines).
func runPeer(dir, prog string, limit time.Duration, doc any, args ...string) error {
	cmd := exec.Command("go", append([]string{"run", "./" + prog}, args...)...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		os.Stderr.Write(errb.Bytes())
		if err != nil {
			return fmt.Errorf("go run ./%s in %s: %v: %s", prog, dir, err, lastLine(errb.String()))
		}
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("go run ./%s in %s: no result within %v", prog, dir, limit)
	}
	if doc == nil {
		return nil
	}
	if err := json.Unmarshal(out.Bytes(), doc); err != nil {
		return fmt.Errorf("%s output: %v", prog, err)
	}
	return nil
}

// lastLine returns the last line of a peer program's standard error,
// where it says why it failed; go run's own closing "exit status N" line
// is passed over (the error already says it).
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && strings.HasPrefix(s[i+1:], "exit status ") {
		s = strings.TrimSpace(s[:i])
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// RunGRPC runs the gRPC-go echo program of the nested module in peersDir
// on the calls shapes and returns its rows, named GRPCSystem, with their
// (downsampled) latency distributions.
func RunGRPC(peersDir string, o Options) ([]CallResult, error) {
	limit := 5*time.Minute + time.Duration(o.Rounds*len(CallShapes))*(o.Warmup+o.Duration+time.Second)
	var doc struct {
		Results []struct {
			CallResult
			Latencies []time.Duration `json:"latencies"`
		} `json:"results"`
	}
	if err := runPeer(peersDir, "grpcecho", limit, &doc, "-d", o.Duration.String(), "-warmup", o.Warmup.String(), "-rounds", itoa(o.Rounds)); err != nil {
		return nil, err
	}
	var out []CallResult
	for _, r := range doc.Results {
		cr := r.CallResult
		cr.System = GRPCSystem
		cr.Latencies = r.Latencies
		out = append(out, cr)
	}
	return out, nil
}

// DetectionResult is one failure detector's time to declare a killed
// member dead (the nested module's detect program, -json).
type DetectionResult struct {
	System   string
	Interval time.Duration
	Trials   int
	OK       int
	P50, P99 time.Duration
	Max      time.Duration
}

// RunDetection runs the nested module's detect program: trials SIGKILL
// trials per system with the given probe interval.
func RunDetection(peersDir string, trials int, interval time.Duration) ([]DetectionResult, error) {
	limit := 5*time.Minute + time.Duration(2*trials)*(40*interval+3*time.Second)
	var doc struct {
		Detection []DetectionResult `json:"detection"`
	}
	err := runPeer(peersDir, "detect", limit, &doc, "-json", "-loss-run", "0", "-trials", itoa(trials), "-interval", interval.String())
	return doc.Detection, err
}

// WriteDetectionMarkdown writes one row per detector, ratios fastcall ÷ it.
func WriteDetectionMarkdown(w io.Writer, rs []DetectionResult) {
	var fc *DetectionResult
	for i := range rs {
		if rs[i].System == "fastcall" {
			fc = &rs[i]
		}
	}
	iv := func(r DetectionResult, d time.Duration) string {
		return fmt.Sprintf("%s (%.1f)", ms(d), float64(d)/float64(r.Interval))
	}
	var rows [][]string
	for _, r := range rs {
		r50, r99 := "", ""
		if fc != nil {
			r50, r99 = ratio(float64(fc.P50), float64(r.P50)), ratio(float64(fc.P99), float64(r.P99))
		}
		rows = append(rows, []string{r.System, r.Interval.String(), fmt.Sprintf("%d/%d", r.OK, r.Trials),
			iv(r, r.P50), iv(r, r.P99), iv(r, r.Max), r50, r99})
	}
	WriteTable(w, []string{"system", "probe interval", "trials declared dead", "p50 ms (intervals)", "p99 ms (intervals)",
		"max ms (intervals)", "fastcall ÷ system: p50", "p99"}, rows)
}
