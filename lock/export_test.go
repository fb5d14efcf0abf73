//go:build linux

package lock

import (
	"unsafe"

	"fastcall/wire"
)

// unsafeBytes views a []uint64 as bytes: an 8-byte aligned region in
// ordinary memory for single-process tests.
func unsafeBytes(buf []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*8)
}

// parseStatForTest exposes parseStat (Linux only) to the table test.
func parseStatForTest(b []byte) (uint64, bool, wire.Errno) {
	st, e := parseStat(b)
	return st.start, st.alive, e
}
