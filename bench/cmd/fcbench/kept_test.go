package main

import (
	"os"
	"path/filepath"
	"testing"
)

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
