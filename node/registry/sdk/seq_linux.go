//go:build linux

package sdk

// This file holds the package's only use of unsafe: the sequence word is
// read and written with atomic operations straight in a shared mapping,
// which needs a *uint64 pointing into it. The mapping is SeqFileSize bytes
// and page aligned, so the word at OffSeq is 8-byte aligned and in range.

import (
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"unsafe"

	"fastcall/wire"
)

// seqMap is a mapping of a change-sequence file.
type seqMap struct {
	mem []byte
	seq *uint64
}

// openSeq maps the sequence file at path, creating it when create is set
// (read-write); otherwise it maps it read-only.
func openSeq(path string, create bool) (*seqMap, error) {
	flag, prot := os.O_RDONLY, syscall.PROT_READ
	if create {
		flag, prot = os.O_RDWR|os.O_CREATE, syscall.PROT_READ|syscall.PROT_WRITE
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, wire.ENOENT
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < SeqFileSize {
		if !create {
			return nil, wire.EPROTO
		}
		if err := f.Truncate(SeqFileSize); err != nil {
			return nil, err
		}
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, SeqFileSize, prot, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	s := &seqMap{mem: mem, seq: (*uint64)(unsafe.Pointer(&mem[OffSeq]))}
	if good, ok := s.magic(create); !good || !ok {
		// Not a sequence file, or cut since its size was read.
		s.close()
		return nil, wire.EPROTO
	}
	return s, nil
}

// magic reports whether the file holds the magic, which it writes first
// when create is set; ok as for load: the size openSeq read may be stale
// by the time the magic is touched.
func (s *seqMap) magic(create bool) (good, ok bool) {
	defer s.catch(debug.SetPanicOnFault(true), &ok)
	m := s.mem[OffSeqMagic : OffSeqMagic+SizeSeqMagic]
	if string(m) != SeqMagic {
		if !create {
			return false, true
		}
		copy(m, SeqMagic)
	}
	return true, true
}

// The word is read and written with debug.SetPanicOnFault set: a local
// process that truncates the file takes its page away, and the access
// would raise SIGBUS, a fatal error of the whole process (the agent's
// node, or a reader's). The runtime makes the fault a panic instead, which
// catch turns into ok false (docs/REGISTRY.md, "Change sequence file").

// load returns the sequence; ok is false if the file was cut under the
// mapping.
func (s *seqMap) load() (v uint64, ok bool) {
	defer s.catch(debug.SetPanicOnFault(true), &ok)
	return atomic.LoadUint64(s.seq), true
}

// add raises the sequence by d and returns it; ok as for load.
func (s *seqMap) add(d uint64) (v uint64, ok bool) {
	defer s.catch(debug.SetPanicOnFault(true), &ok)
	return atomic.AddUint64(s.seq, d), true
}

// store sets the sequence to v; false as for load.
func (s *seqMap) store(v uint64) (ok bool) {
	defer s.catch(debug.SetPanicOnFault(true), &ok)
	atomic.StoreUint64(s.seq, v)
	return true
}

// catch restores the goroutine's setting prev and turns a fault inside
// the mapping into *ok false. Any other panic goes on.
func (s *seqMap) catch(prev bool, ok *bool) {
	debug.SetPanicOnFault(prev)
	p := recover()
	if p == nil {
		return
	}
	f, fault := p.(interface{ Addr() uintptr })
	base := uintptr(unsafe.Pointer(unsafe.SliceData(s.mem)))
	if !fault || f.Addr() < base || f.Addr()-base >= uintptr(len(s.mem)) {
		panic(p)
	}
	*ok = false
}

func (s *seqMap) close() { syscall.Munmap(s.mem) }
