package center

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestAppendAfterLogRenameUnsynced: a write acknowledged after a snapshot
// whose new log was renamed in but whose directory fsync failed is
// recovered after a restart. The log kept appending to the file the
// rename had replaced, unlinked: every write acknowledged after it was
// gone at the next start.
func TestAppendAfterLogRenameUnsynced(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, nil)
	store := map[string][]byte{}
	put := func(key string, rec []byte) error {
		pos, err := l.append(key, rec)
		if err == nil {
			err = l.syncTo(pos)
		}
		if err == nil {
			store[key] = rec
		}
		return err
	}
	for i := 0; i < 3; i++ {
		if err := put(fmt.Sprintf("kv/k%d", i), kvRecord(2, "v")); err != nil {
			t.Fatal(err)
		}
	}
	dirSyncs := 0
	setSyncFile(l, func(f File) error {
		if st, err := f.(*os.File).Stat(); err == nil && st.IsDir() {
			dirSyncs++
			if dirSyncs == 2 { // the snapshot's, then the new log's
				return errors.New("EIO")
			}
		}
		return f.Sync()
	})
	err := l.snapshot(func(fn func(string, []byte)) {
		for k, v := range store {
			fn(k, v)
		}
	})
	if err == nil {
		t.Fatal("snapshot succeeded with the directory fsync failing")
	}
	acked := put("kv/after", kvRecord(2, "after"))
	t.Logf("snapshot: %v; write after it: %v", err, acked)
	// What a restart would recover now (a crash before any other
	// snapshot).
	recovered := func() map[string]bool {
		got := map[string]bool{}
		l2 := openTestLog(t, dir, func(k string, rec []byte) { got[k] = true })
		l2.close()
		return got
	}
	got := recovered()
	for k := range store {
		if !got[k] {
			t.Errorf("acknowledged %s lost at restart", k)
		}
	}
	// The next snapshot that succeeds lifts a refusal.
	setSyncFile(l, l.fsync)
	if err := l.snapshot(func(fn func(string, []byte)) {
		for k, v := range store {
			fn(k, v)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := put("kv/later", kvRecord(2, "later")); err != nil {
		t.Fatalf("write after a good snapshot: %v", err)
	}
	l.close()
	if !recovered()["kv/later"] {
		t.Error("write after a good snapshot lost at restart")
	}
}
