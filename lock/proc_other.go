//go:build !linux

package lock

import "fastcall/wire"

// selfIdentity is not available: holders cannot be named without /proc.
func selfIdentity() (pid int, start uint64, err wire.Errno) {
	return 0, 0, wire.ENOSYS
}

// selfExec is not available: the program is not known.
func selfExec() uint64 { return 0 }

// processLiveness is not available: every holder is presumed alive.
func processLiveness(pid int, start, exec uint64, startKnown bool) liveness {
	return livenessUnknown
}
