// Package fileownertest gives the tests of the file-trust rule (package
// fileowner, and every package that applies it to its own files) the other
// local user those tests plant files as, and the one check that the test
// process may give files to that user.
package fileownertest

import (
	"os"
	"testing"
)

// HostileUID is the uid (nobody) that owns the files another local user
// would plant. It is never the test process's own uid: tests that use it
// run as root (RequireRoot).
const HostileUID = 65534

// RequireRoot skips t unless the process runs as root, the only user that
// may give a file to HostileUID.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
}

// Plant gives path to HostileUID, a final symbolic link itself rather
// than what it points to, and fails t if that is refused.
func Plant(t testing.TB, path string) {
	t.Helper()
	if err := os.Lchown(path, HostileUID, HostileUID); err != nil {
		t.Fatal(err)
	}
}

// PlantWritable makes an empty file at path that every user may write and
// HostileUID owns, the file another user would leave at a name the code
// under test is about to write, and returns it open for reading so that
// the test can check nothing was written into it. t closes it.
func PlantWritable(t testing.TB, path string) *os.File {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	Plant(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
