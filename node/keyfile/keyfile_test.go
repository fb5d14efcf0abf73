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
