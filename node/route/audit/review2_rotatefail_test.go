package audit

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// failCreateFS is a MemFS whose Create fails while fail is set (a full
// disk, a directory made read-only for a while).
type failCreateFS struct {
	*MemFS
	fail atomic.Bool
}

func (f *failCreateFS) Create(name string) (File, error) {
	if f.fail.Load() {
		return nil, errors.New("disk full")
	}
	return f.MemFS.Create(name)
}

// TestReview2KeepAfterCreateFailures: a spell of failed file creations
// does not make the next rotation delete the files the keep bound still
// holds. Every failed creation used to consume a sequence number, and the
// keep bound counted sequence numbers, not files: after the spell the
// first new file deleted every file written before it.
func TestReview2KeepAfterCreateFailures(t *testing.T) {
	fsys := &failCreateFS{MemFS: NewMemFS()}
	a := startLog(t, Config{Dir: "/audit", RotateBytes: 4 << 10, Keep: 4, Buffer: 1024, FS: fsys})
	defer a.Close()
	var rec Record
	rec.Name = "x"
	submit := func(n int) {
		for i := 0; i < n; i++ {
			a.Submit(&rec)
			if !a.Flush(10 * time.Second) {
				t.Fatal("flush timed out")
			}
		}
	}
	// Three files written, the third open.
	for len(mustFiles(t, fsys)) < 3 {
		submit(1)
	}
	before := mustFiles(t, fsys)
	fsys.fail.Store(true)
	// Enough records to need a rotation, then more while it keeps failing.
	for i := 0; i < 200 && a.Stats().WriteErrors == 0; i++ {
		submit(1)
	}
	if a.Stats().WriteErrors == 0 {
		t.Fatal("no rotation failed")
	}
	submit(20)
	fsys.fail.Store(false)
	submit(1)
	after := mustFiles(t, fsys)
	if len(after) != len(before)+1 {
		t.Fatalf("files %v before the failures, %v after one more file (keep 4)", before, after)
	}
}

func mustFiles(t *testing.T, fsys FS) []uint64 {
	t.Helper()
	seqs, err := Files(fsys, "/audit")
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}
