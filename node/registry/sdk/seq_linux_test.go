package sdk

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"fastcall/shm"
	"fastcall/wire"
)

// TestSeqFileCut: a local process truncates the change-sequence file
// under the agent's and a reader's mappings. Neither process dies (the
// access would raise SIGBUS); the reader stops caching and reads the map,
// and the writer makes the file again with a sequence above every value
// it wrote before, so that no reader's cached sequence comes back.
func TestSeqFileCut(t *testing.T) {
	if raceEnabled {
		t.Skip("a fault in the race detector's atomics cannot be recovered")
	}
	path := filepath.Join(t.TempDir(), "map")
	m, err := shm.Create(path, shm.MinSize, shm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w, err := OpenSeqWriter(m.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for range 3 {
		w.Bump()
	}
	r, err := Open(m.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Lookup("svc"); err != wire.ENOENT || !r.Cached() {
		t.Fatalf("before the cut: %v, cached %v; want ENOENT, cached", err, r.Cached())
	}
	if err := os.Truncate(m.Path()+SeqSuffix, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup("svc"); err != wire.ENOENT || r.Cached() {
		t.Fatalf("after the cut: %v, cached %v; want ENOENT from the map, not cached", err, r.Cached())
	}
	w.Bump()
	if got := w.Load(); got != 4 {
		t.Fatalf("sequence after the file was made again: %d, want 4", got)
	}
	r2, err := Open(m.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if !r2.Cached() {
		t.Fatal("a reader opened after the file was made again does not cache")
	}
	if s, ok := r2.seq.load(); !ok || s != 4 {
		t.Fatalf("the file made again reads %d, %v; want 4", s, ok)
	}
}

// BenchmarkSeqLoad: the sequence read a cached Lookup makes, with the
// fault guard, against the bare atomic load it wraps, in one run.
func BenchmarkSeqLoad(b *testing.B) {
	w, err := OpenSeqWriter(filepath.Join(b.TempDir(), "map"))
	if err != nil {
		b.Skip(err)
	}
	defer w.Close()
	s := w.mu.s
	b.Run("guarded", func(b *testing.B) {
		for b.Loop() {
			if _, ok := s.load(); !ok {
				b.Fatal("fault")
			}
		}
	})
	b.Run("atomic", func(b *testing.B) {
		for b.Loop() {
			atomic.LoadUint64(s.seq)
		}
	})
}
