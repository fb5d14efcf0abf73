package shm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"fastcall/shm/fileowner/fileownertest"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// A map file that did not come from Create may have holes: pages with no
// memory behind them (a file written sparsely, or truncated larger). On a
// full tmpfs the first store to such a page raises SIGBUS, which kills the
// process. Open reserves the pages it maps writable, so that a full tmpfs
// fails Open with ENOSPC instead, as it fails Create.
func TestOpenSparseFileOnFullTmpfs(t *testing.T) {
	fileownertest.RequireRoot(t)
	img := goodImage(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })

	// The image with its zero pages left as holes.
	p := filepath.Join(dir, "m")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, arenaAlign)
	for off := 0; off < len(img); off += arenaAlign {
		if pg := img[off : off+arenaAlign]; !bytes.Equal(pg, zero) {
			if _, err := f.WriteAt(pg, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(int64(len(img))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Fill the tmpfs.
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = fill.Write(zero)
	}
	fill.Close()

	if _, err := Open(p, Options{}); !errors.Is(err, wire.ENOSPC) {
		t.Fatalf("Open of a file with holes on a full tmpfs: %v, want ENOSPC", err)
	}
	// A reader stores only to the lock page, which is no hole.
	r, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	r.Close()
	os.Remove(filepath.Join(dir, "fill"))
	m, err := Open(p, Options{})
	if err != nil {
		t.Fatalf("Open with room: %v", err)
	}
	defer m.Close()
	// Faults become panics here, so that the test sees them.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if e := recover(); e != nil {
			t.Fatalf("Put faulted on a page of the file: %v", e)
		}
	}()
	for i := 0; i < 100; i++ {
		if err := m.Put([]byte{'k', byte(i)}, make([]byte, 200)); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
}
