package lock

// This file is the only one that imports unsafe. The lock lives in a byte
// slice that is usually a shared mapping; its words are read and written
// with sync/atomic, which needs typed pointers into that slice. Every
// pointer is made here, from an offset named in layout.go, after Init or
// Attach checked the length and the 8-byte alignment of the region.

import (
	"sync/atomic"
	"unsafe"
)

// aligned8 reports whether the first byte of mem is 8-byte aligned.
// mem must not be empty.
func aligned8(mem []byte) bool {
	return uintptr(unsafe.Pointer(&mem[0]))%8 == 0
}

// word32 returns the u32 at mem[off:]. off must be a multiple of 4 and
// off+4 <= len(mem); mem must be 8-byte aligned.
func word32(mem []byte, off int) *atomic.Uint32 {
	_ = mem[off : off+4] // bounds check; reads nothing
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

// word64 returns the u64 at mem[off:]. off must be a multiple of 8 and
// off+8 <= len(mem); mem must be 8-byte aligned.
func word64(mem []byte, off int) *atomic.Uint64 {
	_ = mem[off : off+8] // bounds check; reads nothing
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}
