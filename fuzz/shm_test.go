package fuzz

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fastcall/shm"
	"fastcall/wire"
)

// shmImage is a small valid map file: keys with short and long values,
// some deleted (so free lists are not empty) and some replaced.
var shmImage struct {
	once sync.Once
	img  []byte
	err  error
}

func validShmImage(tb testing.TB) []byte {
	shmImage.once.Do(func() {
		dir, err := os.MkdirTemp("", "fuzzshm")
		if err != nil {
			shmImage.err = err
			return
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "m")
		m, err := shm.Create(p, shm.MinSize, shm.Options{IndexSlots: 64})
		if err != nil {
			shmImage.err = err
			return
		}
		for i := 0; i < 40; i++ {
			v := []byte(fmt.Sprintf("value-%d", i))
			if i%5 == 0 {
				v = make([]byte, 90+i)
			}
			m.Put([]byte(fmt.Sprintf("k%02d", i)), v)
		}
		for i := 0; i < 40; i += 3 {
			m.Delete([]byte(fmt.Sprintf("k%02d", i)))
		}
		m.Put([]byte("k01"), make([]byte, 200))
		m.Close()
		shmImage.img, shmImage.err = os.ReadFile(p)
	})
	if shmImage.err != nil {
		tb.Fatal(shmImage.err)
	}
	return shmImage.img
}

// openAndRead writes img to a file, opens it read-only and, if it opens,
// verifies it and reads it every way a reader can, then, if it verified,
// writes to it through a read-write Map (lock waits are bounded:
// a damaged lock word may name a live process as its writer). It fails only on a
// panic (the fuzzer reports those) or on an error that is not an errno.
func openAndRead(t *testing.T, img []byte) {
	p := filepath.Join(t.TempDir(), "m")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := shm.Open(p, shm.Options{ReadOnly: true, Timeout: 50 * time.Millisecond})
	if err != nil {
		if wire.AsErrno(err) == wire.EFAULT {
			t.Fatalf("open: error without a number: %v", err)
		}
		return
	}
	defer m.Close()
	verr := m.Verify()
	if verr != nil && !errors.Is(verr, wire.EPROTO) && !errors.Is(verr, wire.ETIMEDOUT) {
		t.Fatalf("verify: %v", verr)
	}
	if errors.Is(verr, wire.ETIMEDOUT) {
		return // every read would wait for the same phantom writer
	}
	// Readers must not trip over a file, verified or not.
	buf := make([]byte, 256)
	for i := 0; i < 40; i++ {
		m.Get([]byte(fmt.Sprintf("k%02d", i)), buf)
	}
	m.Range(nil, nil, func(k, v []byte) bool { return true })
	m.Prefix([]byte("k1"), func(k, v []byte) bool { return true })
	m.Len()
	m.Stats()
	if verr != nil {
		return
	}
	// Writers on a file that verifies must not trip either.
	w, err := shm.Open(p, shm.Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		return
	}
	defer w.Close()
	for i := 0; i < 40; i += 2 {
		k := []byte(fmt.Sprintf("k%02d", i))
		if i%4 == 0 {
			w.Delete(k)
		} else {
			w.Put(k, make([]byte, 10*i))
		}
		w.Put([]byte(fmt.Sprintf("n%02d", i)), k)
	}
	if err := w.Verify(); err != nil && !errors.Is(err, wire.EPROTO) && !errors.Is(err, wire.ETIMEDOUT) {
		t.Fatalf("verify after writes: %v", err)
	}
}

// FuzzShmOpen opens arbitrary file contents.
func FuzzShmOpen(f *testing.F) {
	img := validShmImage(f)
	f.Add(img)
	f.Add(img[:4096])
	f.Add([]byte("FCALLSHM"))
	f.Fuzz(func(t *testing.T, data []byte) {
		openAndRead(t, data)
	})
}

// FuzzShmMutate applies edits to a valid image, past its checksummed
// header: each edit is 5 bytes, a little-endian offset (modulo the image
// size) and a byte to XOR there. This reaches the skiplist, index, free
// lists and values, which random files never get to.
func FuzzShmMutate(f *testing.F) {
	img := validShmImage(f)
	f.Add([]byte{})
	arena := binary.LittleEndian.Uint64(img[56:]) // header: arena offset
	for _, off := range []uint64{arena + 24, arena + 160 + 16, arena + 200, 8192 + 8} {
		e := make([]byte, 5)
		binary.LittleEndian.PutUint32(e, uint32(off))
		e[4] = 0x41
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, edits []byte) {
		b := append([]byte(nil), img...)
		for len(edits) >= 5 {
			off := int(binary.LittleEndian.Uint32(edits)) % len(b)
			b[off] ^= edits[4]
			edits = edits[5:]
		}
		openAndRead(t, b)
	})
}
