package center

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"fastcall/node/registry"
	"fastcall/shm/fileowner/fileownertest"
	"fastcall/wire"
)

// logDir makes a center's data directory holding a snapshot and a log.
// With plant, another user's files sit at the scratch names first, and
// logDir checks that nothing was written into them and that the snapshot
// and the log are this process's, mode 0600.
func logDir(t *testing.T, plant bool) string {
	t.Helper()
	dir := t.TempDir()
	// Scratch names planted by another user, writable by all.
	var planted []*os.File
	for _, name := range plantNames(plant) {
		planted = append(planted, fileownertest.PlantWritable(t, filepath.Join(dir, name)))
	}
	l := openTestLog(t, dir, nil)
	for i := 0; i < 4; i++ {
		if _, err := l.append(fmt.Sprintf("kv/k%d", i), kvRecord(uint64(i+2), "v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.snapshot(func(fn func(string, []byte)) { fn("kv/snap", kvRecord(2, "s")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := l.append("kv/after", kvRecord(3, "a")); err != nil {
		t.Fatal(err)
	}
	l.close()
	for _, f := range planted {
		if b, _ := io.ReadAll(f); len(b) != 0 {
			t.Fatalf("data written into the planted %s", f.Name())
		}
	}
	for _, name := range plantNames(plant) {
		name = name[:len(name)-len(tmpExt)]
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: uid %d mode %v, want 0 and 0600", name, st.Uid, fi.Mode())
		}
	}
	return dir
}

// plantNames returns the scratch names logDir plants, with plant.
func plantNames(plant bool) []string {
	if !plant {
		return nil
	}
	return []string{LogName + tmpExt, SnapshotName + tmpExt}
}

// TestLogFilesCreatedFresh checks that the snapshot and the log are made
// 0600 by this process, never written into a file another user planted at
// their scratch names.
func TestLogFilesCreatedFresh(t *testing.T) {
	fileownertest.RequireRoot(t)
	dir := logDir(t, true)
	n := 0
	l := openTestLog(t, dir, func(string, []byte) { n++ })
	l.close()
	if n != 2 {
		t.Fatalf("recovered %d records, want 2", n)
	}
}

// TestLogFilesRefusedUntrusted checks that a snapshot or a log that
// another uid owns, or that group or others may write, is refused (EPERM)
// instead of loaded.
func TestLogFilesRefusedUntrusted(t *testing.T) {
	fileownertest.RequireRoot(t)
	tests := []struct {
		name string
		file string
		uid  int
		mode os.FileMode
	}{
		{"snapshot-other-uid", SnapshotName, fileownertest.HostileUID, 0o600},
		{"snapshot-group-write", SnapshotName, 0, 0o620},
		{"log-other-uid", LogName, fileownertest.HostileUID, 0o600},
		{"log-other-write", LogName, 0, 0o602},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := logDir(t, false)
			p := filepath.Join(dir, tc.file)
			if err := os.Chown(p, tc.uid, tc.uid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			applied := 0
			l, err := openLog(OSDisk{}, registry.RandomID, dir, FsyncAlways, func(string, []byte) { applied++ })
			if err == nil {
				l.close()
				t.Fatalf("untrusted %s loaded (%d records)", tc.file, applied)
			}
			if wire.AsErrno(err) != wire.EPERM {
				t.Fatalf("%v, want EPERM", err)
			}
		})
	}
}

// TestDataDirRefusedUntrusted: the snapshot and the log are refused
// when another user owns them or may write them, but the directory that
// holds them decides as much: whoever owns it, or may write it (without
// the sticky bit), can delete, rename or swap in an older copy of either
// file between two starts. Such a directory is refused (EPERM) and the
// center does not start.
func TestDataDirRefusedUntrusted(t *testing.T) {
	fileownertest.RequireRoot(t)
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
	}{
		{"other owner", 0o755, fileownertest.HostileUID},
		{"group writable", 0o775, 0},
		{"world writable", 0o777, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, tc.mode)
			if err := os.Chown(dir, tc.uid, tc.uid); err != nil {
				t.Fatal(err)
			}
			l, err := openLog(OSDisk{}, registry.RandomID, dir, FsyncAlways, func(string, []byte) {})
			if err == nil {
				l.close()
				t.Fatalf("openLog accepted a data directory of uid %d mode %v", tc.uid, tc.mode)
			}
			if wire.AsErrno(err) != wire.EPERM {
				t.Fatalf("openLog: %v, want EPERM", err)
			}
		})
	}
	// Sticky and world-writable (others cannot touch this user's files),
	// and this user's own 0700 directory, are accepted.
	for _, mode := range []os.FileMode{0o700, 0o777 | os.ModeSticky} {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		l, err := openLog(OSDisk{}, registry.RandomID, dir, FsyncAlways, func(string, []byte) {})
		if err != nil {
			t.Fatalf("openLog of a %v directory: %v", mode, err)
		}
		l.close()
	}
}
