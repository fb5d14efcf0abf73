package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ScaleResult is one failure detector at one cluster size (the nested
// module's scale program, -json): process CPU time per member, datagrams
// each member sends per probe interval, and the deaths declared while no
// member died.
type ScaleResult struct {
	System      string  `json:"system"`
	N           int     `json:"n"`
	Busy        int     `json:"busy"`
	RunS        float64 `json:"run_s"`
	CPUCores    float64 `json:"cpu_cores"`  // process CPU, the spinners' own thread time taken out
	SpinCores   float64 `json:"spin_cores"` // the spinners' CPU
	CPUPerMemMs float64 `json:"cpu_ms_per_member_s"`
	DgramsPerMI float64 `json:"datagrams_per_member_interval"`
	Deaths      int     `json:"false_deaths"`
	Suspects    int     `json:"suspects"`
	NotAlive    int     `json:"views_not_alive"` // notCounted: the count ran past the scale program's bound
	Views       int     `json:"views"`
	Load1Start  float64 `json:"load1_start"`
	Load1End    float64 `json:"load1_end"`
	Err         string  `json:"error,omitempty"`
	Note        string  `json:"note,omitempty"` // how the cluster came up, when not whole (memberlist's joins are bounded)
}

// notCounted is NotAlive when the scale program did not take the count:
// a collapsed cluster held its locks past the program's bound on it.
const notCounted = -1

// viewsCell is the "views not alive at end" cell of r: not alive of all
// views, or "not counted", never the -1 that stands for it.
func viewsCell(r *ScaleResult) string {
	if r.NotAlive == notCounted {
		return "not counted"
	}
	return fmt.Sprintf("%d/%d", r.NotAlive, r.Views)
}

// ScaleSizes are the cluster sizes of the scale case.
const ScaleSizes = "16,64,128,256"

// ScaleMaxBusy bounds the spinning goroutines of the scale program
// (-busy): it keeps each spinner's thread CPU time in a slot of its own.
const ScaleMaxBusy = 64

// RunScale runs the nested module's scale program (both systems) at the
// cluster sizes ns ("16,64"), with the given probe interval and run
// length, with busy goroutines spinning (0: none).
func RunScale(peersDir, ns string, interval, run time.Duration, busy int) ([]ScaleResult, error) {
	sizes := strings.Count(ns, ",") + 1
	// Per size and system: start (memberlist's joins take up to 2
	// minutes), settle, run, stop (up to 30 s) and count the views (up
	// to 20 s).
	limit := 5*time.Minute + time.Duration(2*sizes)*(run+4*time.Minute)
	var doc struct {
		Scale []ScaleResult `json:"scale"`
	}
	err := runPeer(peersDir, "scale", limit, &doc, "-json", "-n", ns, "-interval", interval.String(),
		"-run", run.String(), "-busy", itoa(busy))
	return doc.Scale, err
}

// ScaleChart writes the SVG chart of CPU per member against N, one line
// per system and busy setting, from RunScale's results.
func ScaleChart(peersDir, svgPath string, rs []ScaleResult) error {
	dir, err := os.MkdirTemp("", "fcbench-scale")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := json.Marshal(map[string]any{"scale": rs})
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "scale.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	return runPeer(peersDir, "scale", 5*time.Minute, nil, "-chart", svgPath, p)
}

// WriteScaleMarkdown writes one row per system and size.
func WriteScaleMarkdown(w io.Writer, rs []ScaleResult) {
	var rows [][]string
	for i := range rs {
		r := &rs[i]
		if r.Err != "" {
			rows = append(rows, []string{r.System, itoa(r.N), itoa(r.Busy), "error: " + r.Err, "", "", "", "", "", "", ""})
			continue
		}
		rows = append(rows, []string{r.System, itoa(r.N), itoa(r.Busy), fmt.Sprintf("%.2f", r.SpinCores), fmt.Sprintf("%.3f", r.CPUCores),
			fmt.Sprintf("%.2f", r.CPUPerMemMs), fmt.Sprintf("%.2f", r.DgramsPerMI), itoa(r.Deaths),
			viewsCell(r), fmt.Sprintf("%.1f-%.1f", r.Load1Start, r.Load1End), r.Note})
	}
	WriteTable(w, []string{"system", "N", "busy goroutines", "their CPU cores", "detector CPU cores", "CPU ms per member per s",
		"datagrams per member per interval", "deaths (none died)", "views not alive at end", "load average (1 min)", "note"}, rows)
}
