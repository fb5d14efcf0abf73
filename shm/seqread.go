package shm

import "fastcall/wire"

// Optimistic reads. Get, where seqReads allows it, reads without taking the
// shared lock: it loads the write sequence, looks the key up and copies the
// value, then loads the sequence again and keeps the result only if the
// sequence was even and has not moved. Writers make the sequence odd right
// after they take the write lock, before any store to the file (repair
// included), and even again right before they release it.
//
// What makes this safe with a writer in another process running at the
// same time, or one that died mid-write:
//
//   - the lookup trusts nothing it reads: every offset is checked against
//     the mapping before use, every probe sequence is bounded, a value's
//     length is checked against the arena and against dst before the copy.
//     Torn or stale words can make it return a wrong answer, never fault or
//     loop; the sequence check then throws that answer away;
//   - a writer that died holding the lock leaves the sequence odd, so
//     readers take the lock (which lets them in beside a dead writer, as
//     before) until the next writer has repaired the file and released it;
//   - a superseded file sends the reader to the locked path, which reopens.
//
// The mapping is never unmapped while the Map is open, so a stale offset
// still points into mapped memory.

// seqTries bounds the optimistic attempts of one Get before it takes the
// lock: a writer is active, and waiting for it is the lock's job.
const seqTries = 2

// beginWriteLocked makes the write sequence odd, unless a writer that died
// holding the lock left it odd. Called with the write hold, before any
// other store to the file.
func (r *region) beginWriteLocked() {
	if s := load64(r.mem, hdrWriteSeqOff); s&1 == 0 {
		store64(r.mem, hdrWriteSeqOff, s+1)
	}
}

// endWriteLocked makes the write sequence even: no writer is inside.
// Called with the write hold, after the last store to the file.
func (r *region) endWriteLocked() {
	if s := load64(r.mem, hdrWriteSeqOff); s&1 != 0 {
		store64(r.mem, hdrWriteSeqOff, s+1)
	}
}

// errSeqBusy is getSeq's answer when the caller must take the lock
// instead (the lookup itself never gives wire.EAGAIN). It never leaves
// the package.
const errSeqBusy = wire.EAGAIN

// getSeq is Get without the lock; h is the key's hash. It returns
// errSeqBusy when the caller must take the lock instead: a writer is
// inside (or died inside), the file was superseded, or writes kept moving
// the sequence; dst may have been written then. Otherwise n and the error
// number are Get's answer.
func (r *region) getSeq(key, dst []byte, h uint64) (int, wire.Errno) {
	mem := r.mem
	for try := 0; try < seqTries; try++ {
		seq := loadAt(mem, hdrWriteSeqOff)
		if seq&1 != 0 || loadAt(mem, hdrGenOff)&genSuperseded != 0 {
			break
		}
		v, e := r.getValue(key, h)
		if e == wire.OK && len(v) <= len(dst) {
			copy(dst, v)
		}
		if loadAt(mem, hdrWriteSeqOff) != seq {
			continue
		}
		if e == wire.OK && len(v) > len(dst) {
			e = wire.EMSGSIZE
		}
		return len(v), e
	}
	return 0, errSeqBusy
}
