package shm

// This is the only file of package shm that imports unsafe. Every 8-byte
// word of the mapping is read and written here, with sync/atomic, because
//
//   - a writer publishes a node, a value or a list head with one aligned
//     8-byte store, and a process that dies at any instruction must leave
//     either the old or the new word in the mapping, never a torn one;
//   - the compiler must not move the plain stores that fill a new node
//     after the atomic store that publishes it.
//
// Callers pass offsets that they have checked against the mapping's bounds
// and that are multiples of 8; the slice expression below is a backstop that
// turns a broken invariant of our own code into a panic instead of a read
// outside the mapping. The mapping itself starts on a page boundary, and
// heap buffers used by tests come from make([]byte, n) with n large, which
// the Go allocator aligns to at least 8 bytes.

import (
	"sync/atomic"
	"unsafe"
)

// load64 atomically reads the word at mem[off:off+8].
func load64(mem []byte, off uint64) uint64 {
	w := mem[off : off+wordSize : off+wordSize]
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&w[0])))
}

// storeHook, when not nil, runs before every store64. Tests set it to stop
// a writer dead (by panicking) before a chosen store, which simulates a
// process killed between any two stores to the mapping.
var storeHook func()

// store64 atomically writes the word at mem[off:off+8].
func store64(mem []byte, off, v uint64) {
	if storeHook != nil {
		storeHook()
	}
	w := mem[off : off+wordSize : off+wordSize]
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&w[0])), v)
}

// aligned8 reports whether the first byte of b sits on an 8-byte boundary.
func aligned8(b []byte) bool {
	return len(b) > 0 && uintptr(unsafe.Pointer(&b[0]))&(wordSize-1) == 0
}
