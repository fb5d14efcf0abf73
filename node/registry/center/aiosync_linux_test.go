package center

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAIOSync: the AIO fsync makes files and directories durable, many
// times over one context, refuses a closed file, and is what the log
// syncer uses where the kernel offers it.
func TestAIOSync(t *testing.T) {
	a, err := newAIOSync()
	if err != nil {
		t.Skipf("no Linux AIO here: %v", err)
	}
	defer a.close()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := f.Write([]byte("frame")); err != nil {
			t.Fatal(err)
		}
		if err := a.sync(f); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.sync(d); err != nil {
		t.Fatalf("directory: %v", err)
	}
	d.Close()
	f.Close()
	if err := a.sync(f); err == nil {
		t.Fatal("sync of a closed file succeeded")
	}

	l, err := openLog(filepath.Join(dir, "log"), FsyncAlways, func(string, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if l.aio == nil {
		t.Fatal("the log does not use the AIO fsync")
	}
	pos, err := l.append("kv/k", kvRecord(2, "v"))
	if err != nil {
		t.Fatal(err)
	}
	// The log syncer's pass goes through AIO.
	l.syncMu.Lock()
	err = l.syncPassLocked(true)
	l.syncMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if done, err := l.settled(pos); !done || err != nil {
		t.Fatalf("after the syncer's pass: settled %v, %v", done, err)
	}
}
