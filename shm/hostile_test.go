package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"fastcall/wire"
)

// A header word scribbled after Open (by a buggy process of the same user,
// or stray writes through another mapping) must not make a writer panic or
// write outside the arena: the bump pointer is read from the file on every
// allocation. Put reports the damage (EPROTO) and writes nothing, and the
// lock and the index, which lie below the arena, stay as they were.
func TestPutScribbledBump(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		name string
		bump func(r *region) uint64
	}{
		{"beyond the file", func(r *region) uint64 { return 1<<64 - blockAlign }},
		{"past the arena", func(r *region) uint64 { return r.arenaEnd + blockAlign }},
		{"inside the lock", func(r *region) uint64 { return lockRegionOff + 8 }},
		{"inside the index", func(r *region) uint64 { return r.indexOff + blockAlign }},
		{"below the head node's end", func(r *region) uint64 { return r.headOff }},
		{"misaligned", func(r *region) uint64 { return r.hdr(hdrBumpOff) + 8 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := mustCreate(t, MinSize)
			putKeys(t, m, 10, "value")
			r := m.cur.Load().r
			below := func() []byte {
				// The lock below its state words, and both index buffers.
				return append(append([]byte(nil), r.mem[lockRegionOff+16:lockRegionOff+lockRegionSize]...), r.mem[r.indexOff:r.arenaOff]...)
			}
			before := below()
			le.PutUint64(r.mem[hdrBumpOff:], tc.bump(r))

			err := m.Put([]byte("new-key"), []byte("new value"))
			if !errors.Is(err, wire.EPROTO) {
				t.Fatalf("Put with bump pointer %#x: %v, want EPROTO", r.hdr(hdrBumpOff), err)
			}
			if !bytes.Equal(below(), before) {
				t.Fatal("Put wrote into the lock or the index")
			}
			if s := m.cur.Load().lk.Stats(); s.Writer || s.ReadHolds != 0 || s.StrayUnlocks != 0 {
				t.Fatalf("lock after the failed Put: %+v", s)
			}
			var buf [16]byte
			if n, err := m.Get([]byte("key-03"), buf[:]); err != nil || string(buf[:n]) != "value" {
				t.Fatalf("Get after the failed Put: %q, %v", buf[:n], err)
			}
		})
	}
}

// Delete frees the value block its node names. With that reference and the
// bump pointer both scribbled past the file, the block check must still
// keep the writer inside the mapping.
func TestDeleteScribbledValueRef(t *testing.T) {
	le := binary.LittleEndian
	m, _ := mustCreate(t, MinSize)
	key := []byte("key-with-a-value-block")
	if err := m.Put(key, bytes.Repeat([]byte("v"), 40)); err != nil {
		t.Fatal(err)
	}
	r := m.cur.Load().r
	n, ok := r.find(key, keyHash(key))
	if !ok {
		t.Fatal("key not found")
	}
	const wild = 1 << 40 // a block offset far past the file
	le.PutUint64(r.mem[n.off+nodeValRefOff:], wild+valueRecOff)
	le.PutUint64(r.mem[hdrBumpOff:], 2*wild)

	if err := m.Delete(key); err != nil && !errors.Is(err, wire.EPROTO) {
		t.Fatalf("Delete: %v, want nil or EPROTO", err)
	}
	if s := m.cur.Load().lk.Stats(); s.Writer || s.StrayUnlocks != 0 {
		t.Fatalf("lock after Delete: %+v", s)
	}
}

// A node's inline record must fit inside the arena even when its capacity
// is zero: Put of an empty value writes that record's header. A node
// planted at the arena's end, its key ending on the last byte, with an
// inline capacity of 0, must not make Put write past the mapping.
func TestPutNodeAtArenaEnd(t *testing.T) {
	le := binary.LittleEndian
	m, _ := mustCreate(t, MinSize)
	if err := m.Put([]byte("some-key"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	r := m.cur.Load().r
	key := []byte("tail-key") // 8 bytes: ends on the arena's last byte
	const level = 1
	off := r.arenaEnd - nodeKeyOff(level) - uint64(len(key))
	h := keyHash(key)
	le.PutUint64(r.mem[off:], blockWord(r.arenaEnd-off, kindNode))
	le.PutUint64(r.mem[off+nodeHashOff:], h)
	le.PutUint64(r.mem[off+nodeMetaOff:], nodeMeta(uint64(len(key)), level, 0))
	copy(r.mem[off+nodeKeyOff(level):], key)
	// Index it where a probe for the key looks first.
	base, mask := r.activeIndex()
	i := h & mask
	for le.Uint64(r.mem[base+i*slotSize:]) != slotEmpty {
		i = (i + 1) & mask
	}
	le.PutUint64(r.mem[base+i*slotSize:], slotWord(h, off, level))

	if err := m.Put(key, nil); err != nil && !errors.Is(err, wire.EPROTO) {
		t.Fatalf("Put: %v, want nil or EPROTO", err)
	}
	if err := m.Verify(); !errors.Is(err, wire.EPROTO) {
		t.Fatalf("Verify of the planted node: %v, want EPROTO", err)
	}
}

// Verify tolerates the residue of an interrupted writer (a hidden node,
// leaked blocks, a count off by one) because the next writer repairs it.
// A file whose write sequence is even and whose lock carries no owner-died
// flag had no writer interrupted since its last repair, so the same
// residue there is damage that no writer will repair: a key whose node
// was hidden by a scribble vanishes from Get and Range, and Put of it
// returns EPROTO for ever. Verify must report it.
func TestVerifyHiddenNodeWithoutCrash(t *testing.T) {
	m, _ := mustCreate(t, MinSize)
	putKeys(t, m, 20, "value")
	if err := m.Verify(); err != nil {
		t.Fatalf("clean file: %v", err)
	}
	r := m.cur.Load().r
	key := numberedKey(7)
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
