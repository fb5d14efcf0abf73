package shm

import (
	"errors"
	"fmt"
	"testing"

	"fastcall/wire"
)

// Verify tolerates the residue of an interrupted writer (a hidden node,
// leaked blocks, a count off by one) because the next writer repairs it.
// A file whose write sequence is even and whose lock carries no owner-died
// flag had no writer interrupted since its last repair, so the same
// residue there is damage that no writer will repair: a key whose node
// was hidden by a scribble vanishes from Get and Range, and Put of it
// returns EPROTO for ever. Verify must report it.
func TestVerifyHiddenNodeWithoutCrash(t *testing.T) {
	m, _ := mustCreate(t, MinSize)
	for i := 0; i < 20; i++ {
		if err := m.Put([]byte(fmt.Sprintf("key-%02d", i)), []byte("value")); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Verify(); err != nil {
		t.Fatalf("clean file: %v", err)
	}
	r := m.cur.Load().r
	key := []byte("key-07")
	n, ok := r.find(key, keyHash(key))
	if !ok {
		t.Fatal("key not found")
	}
	r.setHidden(n, true) // one bit of the meta word, outside any write

	if _, err := m.Get(key, make([]byte, 16)); !errors.Is(err, wire.ENOENT) {
		t.Fatalf("Get of the hidden key: %v, want ENOENT", err)
	}
	if err := m.Put(key, []byte("again")); !errors.Is(err, wire.EPROTO) {
		t.Fatalf("Put of the hidden key: %v, want EPROTO", err)
	}
	if err := m.Verify(); !errors.Is(err, wire.EPROTO) {
		t.Fatalf("Verify with a hidden node and no interrupted writer: %v, want EPROTO", err)
	}
	// Once repaired the key is gone for good and may be written again.
	if err := m.Repair(); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if err := m.Put(key, []byte("again")); err != nil {
		t.Fatalf("Put after Repair: %v", err)
	}
	if err := m.Verify(); err != nil {
		t.Fatalf("Verify after Repair and Put: %v", err)
	}
}
