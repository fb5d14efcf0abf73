//go:build linux

package sdk

// This file holds the package's only use of unsafe: the sequence word is
// read and written with atomic operations straight in a shared mapping,
// which needs a *uint64 pointing into it. The mapping is SeqFileSize bytes
// and page aligned, so the word at OffSeq is 8-byte aligned and in range.

import (
	"os"
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
	if string(mem[OffSeqMagic:OffSeqMagic+SizeSeqMagic]) != SeqMagic {
		if !create {
			syscall.Munmap(mem)
			return nil, wire.EPROTO
		}
		copy(mem[OffSeqMagic:], SeqMagic)
	}
	return &seqMap{mem: mem, seq: (*uint64)(unsafe.Pointer(&mem[OffSeq]))}, nil
}

func (s *seqMap) load() uint64 { return atomic.LoadUint64(s.seq) }
func (s *seqMap) bump()        { atomic.AddUint64(s.seq, 1) }
func (s *seqMap) close()       { syscall.Munmap(s.mem) }
