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
// and that are multiples of 8; the slice expression in load64 and store64
// is a backstop that turns a broken invariant of our own code into a panic
// instead of a read outside the mapping. Get's lookups, the hottest path,
// use loadAt, equalAt and equalShortAt, which skip that backstop: there every offset is
// checked against the arena explicitly, and the arena ends at len(mem)
// (newRegion checks it). The mapping itself starts on a page boundary, and
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

// loadAt is load64 without the bounds check, for the lookups of getValue
// and getSeq, which check every offset against the arena themselves before
// they read there. off+8 must not exceed len(mem) and off must be a multiple of 8.
func loadAt(mem []byte, off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off)))
}

// equalAt reports whether mem[off:off+len(key)] equals key, eight bytes at
// a time, without bounds checks: off+len(key) must not exceed len(mem), and
// key must be at least 8 bytes long (getValue compares shorter keys as one
// masked word). It
// inlines and calls nothing, so the lookup around it keeps its registers,
// and it compares every word before it answers (one branch in all).
func equalAt(mem []byte, off uint64, key []byte) bool {
	n := uintptr(len(key))
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off)
	q := unsafe.Pointer(unsafe.SliceData(key))
	// The last word, which may overlap the one before, then whole words.
	d := *(*uint64)(unsafe.Add(p, n-wordSize)) ^ *(*uint64)(unsafe.Add(q, n-wordSize))
	for i := uintptr(0); i < n-wordSize; i += wordSize {
		d |= *(*uint64)(unsafe.Add(p, i)) ^ *(*uint64)(unsafe.Add(q, i))
	}
	return d == 0
}

// equalShortAt is equalAt for a key of wordSize to shortKeyMax bytes,
// without a loop: up to four word compares folded into one branch, which
// leaves the straight path of getSeq free of loops (the compiler keeps a
// function's values in registers better without them).
func equalShortAt(mem []byte, off uint64, key []byte) bool {
	n := uintptr(len(key))
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off)
	q := unsafe.Pointer(unsafe.SliceData(key))
	d := *(*uint64)(p) ^ *(*uint64)(q)
	d |= *(*uint64)(unsafe.Add(p, n-wordSize)) ^ *(*uint64)(unsafe.Add(q, n-wordSize))
	if n > 2*wordSize {
		d |= *(*uint64)(unsafe.Add(p, wordSize)) ^ *(*uint64)(unsafe.Add(q, wordSize))
	}
	if n > 3*wordSize {
		d |= *(*uint64)(unsafe.Add(p, 2*wordSize)) ^ *(*uint64)(unsafe.Add(q, 2*wordSize))
	}
	return d == 0
}

// bytesAt returns mem[off:off+n] without bounds checks: off+n must not
// exceed len(mem). For the value getValue returns.
func bytesAt(mem []byte, off, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(mem)), off)), n)
}

// bytesWord returns the little-endian word at b[i:i+8] without a bounds
// check: i+8 must not exceed len(b). For keyHash.
func bytesWord(b []byte, i uint64) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
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

// addrIn returns the offset in mem of address a, if mem holds it.
func addrIn(mem []byte, a uintptr) (uint64, bool) {
	if len(mem) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	if a < base || a-base >= uintptr(len(mem)) {
		return 0, false
	}
	return uint64(a - base), true
}
