package shm

import (
	"os"
	"path/filepath"
	"testing"
)

// Create and Grow format a file under a scratch name made of the path, the
// pid and a number, created with O_EXCL. A process that died mid-Create or
// mid-Grow leaves its scratch file behind, and pids are reused: a later
// process with the same pid must still be able to create and grow the map.
func TestScratchFileLeftByDeadProcess(t *testing.T) {
	dir := testDir(t)
	p := filepath.Join(dir, "m")
	// Scratch files of an earlier process with this pid.
	for n := uint64(0); n < 4; n++ {
		if err := os.WriteFile(tempPath(p, n), []byte("left by a crash"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Create(p, MinSize, Options{})
	if err != nil {
		t.Fatalf("Create beside a dead process's scratch file: %v", err)
	}
	defer m.Close()
	if err := m.Put([]byte("key"), []byte("value")); err != nil {
		t.Fatal(err)
	}
	if err := m.Grow(2 * MinSize); err != nil {
		t.Fatalf("Grow beside a dead process's scratch file: %v", err)
	}
	var buf [8]byte
	if n, err := m.Get([]byte("key"), buf[:]); err != nil || string(buf[:n]) != "value" {
		t.Fatalf("Get after Grow: %q, %v", buf[:n], err)
	}
}
