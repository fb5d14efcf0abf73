package sdk

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

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

// TestSeqFileCutWhileOpened: openSeq maps the change-sequence file, then
// reads (and, for the agent, writes) its magic; a local process that
// truncated the file between its size check and that access made the
// access fault, which killed the opening process (a reader's Open, or the
// agent's OpenSeqWriter and the Bump that makes the file again). The
// cut is openSeq's EPROTO now, and the opener lives on.
func TestSeqFileCutWhileOpened(t *testing.T) {
	if raceEnabled {
		t.Skip("a fault in the race detector's atomics cannot be recovered")
	}
	path := filepath.Join(t.TempDir(), "map") + SeqSuffix
	w, err := openSeq(path, true)
	if err != nil {
		t.Fatal(err)
	}
	w.close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			os.Truncate(path, 0)
			os.WriteFile(path, good, 0o644)
		}
	}()
	opened, cut := 0, 0
	for end, i := time.Now().Add(time.Second), 0; time.Now().Before(end); i++ {
		s, err := openSeq(path, i%2 == 0)
		switch {
		case err == nil:
			s.close()
			opened++
		case err == wire.EPROTO:
			cut++
		default:
			stop.Store(true)
			<-done
			t.Fatalf("open %d: %v, want success or EPROTO", i, err)
		}
	}
	stop.Store(true)
	<-done
	t.Logf("opened %d, cut %d", opened, cut)
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
