package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResultsDir(t *testing.T) {
	tmp := filepath.Join(os.TempDir(), "fcbench")
	cases := []struct {
		name   string
		out    string
		outSet bool
		full   bool
		want   string
	}{
		{"full run, default", "bench", false, true, "bench"},
		{"full run, -out", "/x/y", true, true, "/x/y"},
		{"partial run, default", "bench", false, false, tmp},
		{"partial run, -out", "/x/y", true, false, "/x/y"},
		{"partial run, -out naming the default", "bench", true, false, "bench"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := resultsDir(c.out, c.outSet, c.full); got != c.want {
				t.Fatalf("resultsDir(%q, %v, %v) = %q, want %q", c.out, c.outSet, c.full, got, c.want)
			}
		})
	}
}

// TestBadScaleFlags: the scale case's flags are checked before anything
// runs: exit 2.
func TestBadScaleFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-case", "scale", "-scale-n", "1"},
		{"-case", "scale", "-scale-n", "16,x"},
		{"-case", "scale", "-scale-run", "0s"},
		{"-case", "scale", "-scale-interval", "-1ms"},
		{"-case", "scale", "-scale-busy", "-1"},
		{"-case", "scale", "-scale-busy", "65"}, // past bench.ScaleMaxBusy: the scale program refuses it
	} {
		if rc := run(append(args, "-out", t.TempDir(), "-peers", t.TempDir())); rc != 2 {
			t.Errorf("%v: exit %d, want 2", args, rc)
		}
	}
}

// TestKeptSection: the hand-kept speed-mechanism section of RESULTS.md is
// carried into the next run's file, and a file without one gives nothing.
func TestKeptSection(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "RESULTS.md")
	if got := keptSection(p); got != nil {
		t.Fatalf("missing file: %q", got)
	}
	kept := keptHeading + "\n\nbell: 1.29x\n"
	if err := os.WriteFile(p, []byte("# results\n\n## calls\n\nrows\n"+kept), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(keptSection(p)); got != kept {
		t.Fatalf("kept %q, want %q", got, kept)
	}
	if err := os.WriteFile(p, []byte("# results\n\n## calls\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := keptSection(p); got != nil {
		t.Fatalf("no section: %q", got)
	}
}
