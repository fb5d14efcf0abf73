//go:build !amd64

package shm

// seqReads is false where the memory model does not keep loads in order
// (seqread_amd64.go says why that matters): Get always takes the shared
// lock.
const seqReads = false
