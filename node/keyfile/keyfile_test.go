package keyfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"fastcall/shm/fileowner/fileownertest"
	"fastcall/wire"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := Write(good, []byte("0123456789abcdef0123\n")); err != nil {
		t.Fatal(err)
	}
	k, err := Read(good)
	if err != nil || string(k) != "0123456789abcdef0123" {
		t.Fatalf("%q %v", k, err)
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("0123456789abcdef0123"), 0o644)
	os.Chmod(open, 0o644)
	short := filepath.Join(dir, "short")
	Write(short, []byte("short"))
	longest := filepath.Join(dir, "longest")
	Write(longest, []byte(strings.Repeat("k", MaxKeyLen)+"\n"))
	if k, err := Read(longest); err != nil || len(k) != MaxKeyLen {
		t.Fatalf("a key of MaxKeyLen bytes and a newline: %d bytes, %v", len(k), err)
	}
	// A large file named by mistake (here 64 MiB, sparse) is refused,
	// not read whole and taken for the key.
	long := filepath.Join(dir, "long")
	Write(long, nil)
	if err := os.Truncate(long, 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{open, "group or others"},
		{short, "need at least"},
		{long, "more than 4096 bytes"},
		{dir, "not a regular file"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		if _, err := Read(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.path, err)
		}
	}
	if _, err := ReadPrev(long); err == nil || !strings.Contains(err.Error(), "more than 4096 bytes") {
		t.Errorf("ReadPrev %s: %v", long, err)
	}
}

// A key file another user owns is refused, even with mode 0600: its owner
// chose the key.
func TestReadRefusesOtherOwner(t *testing.T) {
	fileownertest.RequireRoot(t)
	p := filepath.Join(t.TempDir(), "key")
	if err := Write(p, []byte("0123456789abcdef0123")); err != nil {
		t.Fatal(err)
	}
	fileownertest.Plant(t, p)
	_, err := Read(p)
	if err == nil || !strings.Contains(err.Error(), "owned by uid "+strconv.Itoa(fileownertest.HostileUID)) || wire.AsErrno(errors.Unwrap(err)) != wire.EPERM {
		t.Fatalf("Read of another uid's key file: %v", err)
	}
	os.Chown(p, 0, 0)
	os.Chmod(p, 0o620)
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "write") {
		t.Fatalf("Read of a group-writable key file: %v", err)
	}
}

// Write replaces a file planted at the path by another user instead of
// writing the key into it (which would leave the planter able to read it).
func TestWriteReplacesPlanted(t *testing.T) {
	fileownertest.RequireRoot(t)
	p := filepath.Join(t.TempDir(), "key")
	planted := fileownertest.PlantWritable(t, p)
	key := []byte("0123456789abcdef0123")
	if err := Write(p, key); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: uid %d mode %v", st.Uid, fi.Mode())
	}
	if b, _ := io.ReadAll(planted); len(b) != 0 {
		t.Fatalf("key written into the planted file: %q", b)
	}
	if k, err := Read(p); err != nil || string(k) != string(key) {
		t.Fatalf("Read after Write: %q %v", k, err)
	}
}

// A FIFO at the key path is refused at once, not waited on.
func TestReadFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Read of a FIFO: %v", err)
	}
}

func TestReadPrevAndID(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, p := range []string{"", filepath.Join(dir, "missing"), empty} {
		if k, err := ReadPrev(p); k != nil || err != nil {
			t.Errorf("ReadPrev(%q) = %q, %v; want none", p, k, err)
		}
	}
	short := filepath.Join(dir, "short")
	Write(short, []byte("short"))
	if _, err := ReadPrev(short); err == nil {
		t.Error("short previous key accepted")
	}
	key := []byte("0123456789abcdef0123")
	if id := ID(key); len(id) != 8 || strings.Contains(string(key), id) || ID(nil) != "none" {
		t.Errorf("ID: %q", id)
	}
}

// TestReadRefusesForeignSymlink: a symbolic link another user made
// at the key path (in a shared directory) points the process at a file of
// its own that the link's maker chose; the key would be that file's
// bytes. Read refuses a link not owned by the effective uid or root, and
// still follows one that is (mounted secrets are such links).
func TestReadRefusesForeignSymlink(t *testing.T) {
	fileownertest.RequireRoot(t)
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
	fileownertest.Plant(t, foreign)
	k, err := Read(foreign)
	if err == nil {
		t.Fatalf("Read followed another uid's link and took %q as the key", k)
	}
	if wire.AsErrno(errors.Unwrap(err)) != wire.EPERM {
		t.Fatalf("Read of another uid's link: %v, want an EPERM error", err)
	}
}
