package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fastcall/bench"
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

// TestParseSystems: -systems picks calls systems by key and the gRPC-go
// peer by its own; all is every one of them; an unknown key or none at
// all is an error that names the known keys.
func TestParseSystems(t *testing.T) {
	keys, grpc, err := parseSystems("all")
	if err != nil || keys != nil || !grpc {
		t.Fatalf("all: %q, %v, %v", keys, grpc, err)
	}
	keys, grpc, err = parseSystems("raw-child, fastcall-child")
	if err != nil || !slices.Equal(keys, []string{"raw-child", "fastcall-child"}) || grpc {
		t.Fatalf("two keys: %q, %v, %v", keys, grpc, err)
	}
	if sys, _ := bench.SystemsOf(keys); len(sys) != 2 || sys[0].Name() != bench.RawChildSystem || sys[1].Name() != bench.FastcallChildSys {
		t.Fatalf("systems of %q: %v", keys, sys)
	}
	keys, grpc, err = parseSystems("grpc")
	if err != nil || len(keys) != 0 || !grpc {
		t.Fatalf("grpc alone: %q, %v, %v", keys, grpc, err)
	}
	for _, bad := range []string{"", "raw,,fastcall", "raw-echo", "fastcall, server in a child process"} {
		_, _, err := parseSystems(bad)
		if err == nil || !strings.Contains(err.Error(), "raw-child") || !strings.Contains(err.Error(), grpcKey) {
			t.Errorf("%q: error %v, want one naming the known keys", bad, err)
		}
	}
}

// TestBadSystemsFlag: a -systems value that names no known system stops
// the run before anything is measured: exit 2.
func TestBadSystemsFlag(t *testing.T) {
	for _, v := range []string{"raw-echo", "", "raw,"} {
		if rc := run([]string{"-case", "calls", "-systems", v, "-out", t.TempDir(), "-peers", t.TempDir()}); rc != 2 {
			t.Errorf("-systems %q: exit %d, want 2", v, rc)
		}
	}
}
