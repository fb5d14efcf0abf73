package main

import (
	"errors"
	"io"
	"testing"
)

// TestTableSection: a case that measured gets its heading, its method and
// its table, each followed by a blank line, and keeps its data; a case
// that failed gets its error and no section.
func TestTableSection(t *testing.T) {
	s, err := tableSection([]int{1}, nil, "## x: heading", "How x measures.", func(w io.Writer) { io.WriteString(w, "| t |\n") })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.md.String(), "## x: heading\n\nHow x measures.\n\n| t |\n\n"; got != want {
		t.Fatalf("section %q, want %q", got, want)
	}
	if d, ok := s.data.([]int); !ok || len(d) != 1 {
		t.Fatalf("data %v", s.data)
	}
	fail := errors.New("no measurement")
	if s, err := tableSection(nil, fail, "## x", "m", func(io.Writer) { t.Fatal("table written for a failed case") }); s != nil || err != fail {
		t.Fatalf("failed case: %v, %v", s, err)
	}
}
