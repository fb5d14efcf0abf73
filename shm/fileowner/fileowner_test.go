package fileowner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fastcall/shm/fileowner/fileownertest"
	"fastcall/wire"

	"golang.org/x/sys/unix"
)

func TestReason(t *testing.T) {
	const reg = unix.S_IFREG
	tests := []struct {
		name    string
		uid     uint32
		mode    uint32
		euid    int
		rootToo bool
		want    string // "" accepted, else a part of the reason
	}{
		{"own 0600", 1000, reg | 0o600, 1000, false, ""},
		{"own 0644", 1000, reg | 0o644, 1000, false, ""},
		{"own 0640", 1000, reg | 0o640, 1000, false, ""},
		{"other uid", 65534, reg | 0o600, 1000, false, "owned by uid 65534, not 1000"},
		{"root, writer", 0, reg | 0o644, 1000, false, "owned by uid 0"},
		{"root, reader", 0, reg | 0o644, 1000, true, ""},
		{"other uid, reader", 65534, reg | 0o644, 1000, true, "owned by uid 65534"},
		{"group write", 1000, reg | 0o660, 1000, false, "mode 0660"},
		{"other write", 1000, reg | 0o606, 1000, true, "mode 0606"},
		{"directory", 1000, unix.S_IFDIR | 0o700, 1000, false, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := unix.Stat_t{Uid: tc.uid, Mode: tc.mode}
			got := Reason(&st, tc.euid, tc.rootToo)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("Reason = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCreateFreshAndOpenTrusted(t *testing.T) {
	fileownertest.RequireRoot(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	// A file planted by another user, writable by all.
	if err := os.WriteFile(p, []byte("planted"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o666)
	fileownertest.Plant(t, p)
	if f, err := OpenTrusted(p, os.O_RDONLY); wire.AsErrno(err) != wire.EPERM {
		if err == nil {
			f.Close()
		}
		t.Fatalf("OpenTrusted of a planted file: %v", err)
	}
	if _, err := CreateFresh(p, 0o664); err != wire.EINVAL {
		t.Fatalf("CreateFresh 0664: %v", err)
	}
	f, err := CreateFresh(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = OpenTrusted(p, os.O_RDONLY)
	if err != nil {
		t.Fatalf("OpenTrusted of a fresh file: %v", err)
	}
	var st unix.Stat_t
	unix.Fstat(int(f.Fd()), &st)
	f.Close()
	if st.Uid != 0 || st.Mode&0o777 != 0o600 || st.Size != 0 {
		t.Fatalf("fresh file: uid %d mode %o size %d", st.Uid, st.Mode&0o777, st.Size)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTrusted(fifo, os.O_RDONLY); wire.AsErrno(err) != wire.EPERM {
		t.Fatalf("OpenTrusted of a FIFO: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(p, link)
	if _, err := OpenTrusted(link, os.O_RDONLY); wire.AsErrno(err) != wire.EPERM {
		t.Fatalf("OpenTrusted of a symlink: %v", err)
	}
}

func TestDirReason(t *testing.T) {
	for _, tc := range []struct {
		mode, uid uint32
		ok        bool
	}{
		{unix.S_IFDIR | 0o700, 1000, true},
		{unix.S_IFDIR | 0o755, 0, true},
		{unix.S_IFDIR | 0o1777, 1000, true},
		{unix.S_IFDIR | 0o775, 1000, false},
		{unix.S_IFDIR | 0o757, 1000, false},
		{unix.S_IFDIR | 0o700, 65534, false},
		{unix.S_IFREG | 0o700, 1000, false},
	} {
		st := unix.Stat_t{Mode: tc.mode, Uid: tc.uid}
		if r := DirReason(&st, 1000); (r == "") != tc.ok {
			t.Errorf("mode %o uid %d: %q", tc.mode, tc.uid, r)
		}
	}
}
