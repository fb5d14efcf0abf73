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
//     under the lock they reopen the path if a Grow that died after its
//     rename left another file there (Map.replacedAfterDeath);
//   - a superseded file sends the reader to the locked path, which reopens.
//
// The mapping is never unmapped while the Map is open, so a stale offset
// still points into mapped memory.

// shortKeyMax is the longest key whose lookup getSeq writes out straight
// (equalShortAt); longer keys, and keys shorter than a word, take
// getSeqSlow.
const shortKeyMax = 4 * wordSize

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

// getSeq's answers that are not Get's: errSeqBusy when the caller must
// take the lock (a writer is inside or died inside, or the file was
// superseded), errSeqMoved when a write moved the sequence during the
// lookup and the caller may try again. The lookup itself gives neither;
// they never leave the package.
const (
	errSeqBusy  = wire.EAGAIN
	errSeqMoved = wire.EBUSY
)

// getSeq is one attempt at Get without the lock. It returns errSeqBusy or
// errSeqMoved (dst may have been written then), or Get's answer: n and the
// error number.
//
// The common case is written out straight: the first slot with the key's
// tag names the key's node, the node holds its value inline, and every
// offset is in range. Anything else (a tag shared with another key, a value
// in a block of its own, an offset out of range) goes to getSeqSlow, which
// asks getInto, the Get of the locked paths. Get's time depends on how
// many instructions lie between one lookup's cache misses and the next
// one's (docs/SHM.md); the straight path has no loop around its checks,
// so the compiler keeps its values in registers. The checks are
// getValue's, in another form:
//
//   - a slot's node must lie above the arena's start, and the inline
//     record it implies must have its header inside the arena, which
//     covers the node's fixed words and the key before it as well;
//   - the inline record is loaded before the node has named it, and is
//     used only if the node's valRef names that same word.
func (r *region) getSeq(key, dst []byte) (int, wire.Errno) {
	h := keyHash(key)
	mem := r.mem
	seq := loadAt(mem, hdrWriteSeqOff)
	if seq&1 != 0 || loadAt(mem, hdrGenOff)&genSuperseded != 0 {
		return 0, errSeqBusy
	}
	// Probe to the first slot with the key's tag; an empty slot (or every
	// slot probed) means absent.
	base, mask := r.indexOf(loadAt(mem, hdrIndexActOff))
	i := h & mask
	s := loadAt(mem, base+i*slotSize+slotNodeOff)
	for k := uint64(0); s>>slotTagShift != h>>slotTagShift; k++ {
		if s == slotEmpty || k == mask {
			if loadAt(mem, hdrWriteSeqOff) != seq {
				return 0, errSeqMoved
			}
			return 0, wire.ENOENT
		}
		i = (i + 1) & mask
		s = loadAt(mem, base+i*slotSize+slotNodeOff)
	}
	// The key's place and the inline record's come from the slot's level
	// and the key's length, so the key, the meta word and the record load
	// at once.
	klen := uint64(len(key))
	node, level := slotNode(s), slotLevel(s)
	koff := node + nodeKeyOff(level)
	ref := align(koff+klen, wordSize)
	if klen-wordSize > shortKeyMax-wordSize || node < r.arenaOff || ref > r.recLast {
		// A key outside [wordSize, shortKeyMax], an empty slot of tag 0,
		// a tombstone, damage.
		return r.getSeqSlow(key, dst, h, seq)
	}
	rec := loadAt(mem, ref)
	meta := loadAt(mem, node+nodeMetaOff)
	if !equalShortAt(mem, koff, key) ||
		meta&(metaKeyMask|metaLevelMask<<metaLevelShift|metaHidden) != klen|level<<metaLevelShift ||
		loadAt(mem, node+nodeValRefOff) != ref {
		return r.getSeqSlow(key, dst, h, seq)
	}
	l := rec & recLenMask
	if l > MaxValueLen || ref+recHdrSize+l > r.arenaEnd {
		return r.getSeqSlow(key, dst, h, seq)
	}
	if l <= uint64(len(dst)) {
		copy(dst, bytesAt(mem, ref+recHdrSize, l))
	}
	if loadAt(mem, hdrWriteSeqOff) != seq {
		return 0, errSeqMoved
	}
	if l > uint64(len(dst)) {
		return int(l), wire.EMSGSIZE
	}
	return int(l), wire.OK
}

// getSeqSlow finishes what getSeq started, under the same sequence seq,
// with getInto, the locked paths' Get: for a key outside getSeq's lengths,
// a tag shared by two keys, a value in a block of its own, or a damaged
// file.
func (r *region) getSeqSlow(key, dst []byte, h, seq uint64) (int, wire.Errno) {
	n, err := r.getInto(key, dst, h)
	if loadAt(r.mem, hdrWriteSeqOff) != seq {
		return 0, errSeqMoved
	}
	return n, wire.AsErrno(err)
}
