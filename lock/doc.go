// Package lock owns a process-shared, robust reader/writer lock that lives in
// a caller-provided byte region, normally the first Size bytes of a MAP_SHARED
// mapping. docs/LOCK.md specifies it; this comment is the summary.
//
// # Layout
//
// The region holds no pointers and may be mapped at different addresses in
// different processes. All words are little-endian; the region must be
// 8-byte aligned.
//
//	offset size field
//	     0    4 magic "FCLK" (Magic)
//	     4    4 layout version (Version); Attach refuses any other with wire.EPROTO
//	     8    4 state word: writer owner, draining, waiters, owner-died, write sequence
//	    12    4 drain sequence: futex word of a writer waiting for readers
//	    16    4 slot count (124), checked by Attach
//	    20    4 slot size (32), checked by Attach
//	    24    4 high-water mark: slots [0, hw) may be in use
//	    28    4 stray unlocks
//	    32    8 writers reclaimed from dead processes
//	    40    8 read holds reclaimed from dead processes
//	    48    8 slots reclaimed from dead processes
//	    56    8 ForceUnlock calls
//	    64   64 reserved, zero
//	   128 4032 124 holder slots of 32 bytes:
//	              +0  8 slot word: pid(22) | state(2) | generation(16) | read holds(24)
//	              +8  8 process start time (clock ticks since boot)
//	              +16 4 sleeping goroutines (statistics)
//	              +20 4 reserved
//	              +24 8 program word: claim generation << 48 | start of the stack
//
// # Holders
//
// Each handle (Init or Attach result) claims one holder slot and records its
// process's pid and start time there. Goroutines of a process share the
// handle and its slot. A reader counts its holds only in its own slot; the
// writer is named by slot index inside the state word, set by the same CAS
// that takes the lock. A waiter that cannot get in checks, every
// LivenessPoll, whether the holders it waits for are alive (kill(pid, 0),
// then the start time, state and stack start in /proc/<pid>/stat: a
// process that replaced its program with exec holds nothing) and reclaims
// the holds of dead ones. A dead writer leaves the owner-died flag set: the next writer
// gets wire.EOWNERDEAD, repairs, and calls MarkConsistent.
//
// # Fast paths
//
// RLock and RUnlock are an atomic add on the handle's slot and a load of the
// state word. Lock is a CAS on the state word and a scan of the in-use slots;
// Unlock is a CAS. Sleeping uses FUTEX_WAIT and FUTEX_WAKE without
// FUTEX_PRIVATE_FLAG, and a wake-up is issued only when a sleeper recorded
// itself. Writers are preferred: a writer that is waiting for readers blocks
// new readers.
//
// # Limits
//
// At most Slots handles may be attached at once (Attach returns
// wire.ENOSPC past that, after reclaiming dead processes' slots); at most
// MaxReadHolds read holds per handle (RLock returns wire.ENOSPC past that).
// The lock is not re-entrant. All processes must share one pid namespace.
// Off Linux the region can be formatted and attached, and lock operations
// return wire.ENOSYS.
package lock
