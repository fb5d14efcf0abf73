package center

import (
	"os"
	"path/filepath"
	"testing"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/regtest"
	"fastcall/wire"
)

// TestReviewDataDirRefusedUntrusted: the snapshot and the log are refused
// when another user owns them or may write them, but the directory that
// holds them decides as much: whoever owns it, or may write it (without
// the sticky bit), can delete, rename or swap in an older copy of either
// file between two starts. Such a directory is refused (EPERM) and the
// center does not start.
func TestReviewDataDirRefusedUntrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another uid")
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
	}{
		{"other owner", 0o755, regtest.HostileUID},
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
