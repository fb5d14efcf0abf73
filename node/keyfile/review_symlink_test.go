package keyfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"fastcall/wire"
)

// TestReviewReadRefusesForeignSymlink: a symbolic link another user made
// at the key path (in a shared directory) points the process at a file of
// its own that the link's maker chose; the key would be that file's
// bytes. Read refuses a link not owned by the effective uid or root, and
// still follows one that is (mounted secrets are such links).
func TestReviewReadRefusesForeignSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a link to another uid")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "some-private-file")
	if err := Write(real, []byte("0123456789abcdef0123")); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(dir, "own-link")
	if err := os.Symlink(real, own); err != nil {
		t.Fatal(err)
	}
	if k, err := Read(own); err != nil || string(k) != "0123456789abcdef0123" {
		t.Fatalf("Read through a link of the effective uid: %q %v", k, err)
	}
	foreign := filepath.Join(dir, "key")
	if err := os.Symlink(real, foreign); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	k, err := Read(foreign)
	if err == nil {
		t.Fatalf("Read followed another uid's link and took %q as the key", k)
	}
	if wire.AsErrno(errors.Unwrap(err)) != wire.EPERM {
		t.Fatalf("Read of another uid's link: %v, want an EPERM error", err)
	}
}
