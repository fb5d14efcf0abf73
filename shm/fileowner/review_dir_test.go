package fileowner

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestReviewDirReason(t *testing.T) {
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
