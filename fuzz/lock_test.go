package fuzz

import (
	"testing"

	"fastcall/lock"
	"fastcall/wire"
)

// lockRegion returns a Size-byte, 8-byte aligned window of a fresh buffer,
// found by letting lock.Init reject the misaligned ones.
func lockRegion(tb testing.TB) []byte {
	buf := make([]byte, lock.Size+8)
	for off := 0; off < 8; off++ {
		r := buf[off : off+lock.Size]
		if _, err := lock.Init(r); err == nil {
			return r
		}
	}
	tb.Fatal("no aligned window")
	return nil
}

// FuzzLockAttach feeds arbitrary region contents to lock.Attach: it must
// answer EPROTO, EINVAL or ENOSPC, or give a handle on which non-blocking
// operations return promptly, all without panicking. With fix set, the
// identification words are made valid first, so the input reaches the
// state word and the slots.
func FuzzLockAttach(f *testing.F) {
	fresh := lockRegion(f)
	f.Add(append([]byte(nil), fresh...), false)
	f.Add(append([]byte(nil), fresh[:64]...), true)
	f.Add([]byte{}, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		region := lockRegion(t)
		clear(region)
		copy(region, data)
		if fix {
			copy(region, fresh[:24]) // magic, version, state, drain, slot geometry
			copy(region[8:16], pad(data, 8))
		}
		l, err := lock.Attach(region)
		if err != nil {
			switch wire.AsErrno(err) {
			case wire.EPROTO, wire.EINVAL, wire.ENOSPC:
				return
			}
			t.Fatalf("Attach: unexpected %v", err)
		}
		_ = l.Stats()
		if err := l.RLockTimeout(0); err == nil {
			l.RUnlock()
		}
		switch err := l.LockTimeout(0); wire.AsErrno(err) {
		case wire.OK, wire.EOWNERDEAD:
			l.MarkConsistent()
			l.Unlock()
		case wire.ETIMEDOUT:
		default:
			t.Fatalf("LockTimeout: unexpected %v", err)
		}
		_ = l.NeedsRepair()
		_ = l.Stats()
		_ = l.Detach()
	})
}

// pad returns the first n bytes of b, zero-extended.
func pad(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}
