package keyfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	for _, tc := range []struct{ path, want string }{
		{open, "group or others"},
		{short, "need at least"},
		{dir, "not a regular file"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		if _, err := Read(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.path, err)
		}
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
