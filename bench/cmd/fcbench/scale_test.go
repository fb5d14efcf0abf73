package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeScale is a scale program (bench/peers/scale) that measures one
// idle row, fails its saturated runs, and writes a chart.
const fakeScale = `package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	flag.Bool("json", false, "")
	flag.String("n", "", "")
	flag.String("interval", "", "")
	flag.String("run", "", "")
	busy := flag.Int("busy", 0, "")
	chart := flag.String("chart", "", "")
	flag.Parse()
	if *chart != "" {
		if err := os.WriteFile(*chart, []byte("<svg/>"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *busy > 0 {
		fmt.Fprintln(os.Stderr, "spinners cannot start")
		os.Exit(1)
	}
	fmt.Println(` + "`" + `{"scale":[{"system":"fastcall","n":16,"busy":0,"run_s":1,"cpu_cores":0.125}]}` + "`" + `)
}
`

// TestScaleBusyFails: the saturated runs failing (the scale program
// exits non-zero) keeps the idle rows already measured, notes the
// failure in the section, and the chart goes to -out even when -out is
// relative (the scale program runs in the peers directory).
func TestScaleBusyFails(t *testing.T) {
	peers := t.TempDir()
	if err := os.MkdirAll(filepath.Join(peers, "scale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(peers, "go.mod"), []byte("module fakepeers\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(peers, "scale", "main.go"), []byte(fakeScale), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	t.Chdir(work)
	if err := os.Mkdir("out", 0o755); err != nil {
		t.Fatal(err)
	}
	e := &runEnv{outDir: "out", peers: peers, progress: func(string) {},
		scale: scaleOpts{n: "16", run: time.Second, interval: 200 * time.Millisecond, busy: 2}}
	s, err := runScale(e)
	if err != nil {
		t.Fatalf("runScale: %v", err)
	}
	md := s.md.String()
	if !strings.Contains(md, "| fastcall | 16 |") {
		t.Errorf("idle row lost:\n%s", md)
	}
	if !strings.Contains(md, "spinners cannot start") {
		t.Errorf("saturated runs' failure not noted:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(work, "out", "scale-cpu.svg")); err != nil {
		t.Errorf("chart: %v\n%s", err, md)
	}
}
