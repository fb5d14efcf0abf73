//go:build !linux

package lock

import (
	"testing"
	"unsafe"

	"fastcall/wire"
)

// TestENOSYS checks that off Linux a region formats and attaches, and every
// lock operation returns wire.ENOSYS.
func TestENOSYS(t *testing.T) {
	buf := make([]uint64, Size/8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), Size)
	l, err := Init(mem)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if _, err := Attach(mem); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	ops := []struct {
		name string
		f    func() error
	}{
		{"Lock", l.Lock},
		{"RLock", l.RLock},
		{"LockTimeout", func() error { return l.LockTimeout(0) }},
		{"RLockTimeout", func() error { return l.RLockTimeout(0) }},
	}
	for _, op := range ops {
		if got := wire.AsErrno(op.f()); got != wire.ENOSYS {
			t.Errorf("%s: got %v, want ENOSYS", op.name, got)
		}
	}
	l.Unlock()
	l.RUnlock()
	l.ForceUnlock()
	l.MarkConsistent()
	_ = l.Stats()
}
