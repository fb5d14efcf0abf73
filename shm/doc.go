// Package shm owns a shared-memory ordered key/value map: one file (by
// default under /dev/shm) mapped shared by every local process that uses it.
// The file holds a header, a process-shared robust reader/writer lock
// (package lock), a hash index and an arena with a skiplist of
// variable-length keys and values. docs/SHM.md specifies the file layout,
// the crash-safety argument and the growth protocol.
//
// Concurrency contract: any number of processes and goroutines may use the
// same file at once. Readers (Get, View, Range, Prefix, Len) take the shared
// lock, except that Get on amd64 first reads without it and keeps the
// answer only if no writer was inside meanwhile (seqread.go); writers (Put,
// Delete, Grow, Repair) take the exclusive lock. A *Map
// is safe for concurrent use by several goroutines, except Close, which must
// not run concurrently with any other method of the same *Map.
//
// Durability: a Put that returned nil has its data in the shared mapping. The
// data survives the death of any process at any instruction, but not a
// machine reboot (/dev/shm is memory).
package shm
