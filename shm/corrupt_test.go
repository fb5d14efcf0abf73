package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"fastcall/wire"
)

// goodImage returns the bytes of a small populated map file.
func goodImage(t testing.TB) []byte {
	t.Helper()
	m, p := mustCreate(t, MinSize)
	for i := 0; i < 150; i++ {
		v := []byte(fmt.Sprintf("value-%d", i))
		if i%7 == 0 {
			v = make([]byte, 100+i)
		}
		if err := m.Put([]byte(fmt.Sprintf("key-%03d", i)), v); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 150; i += 5 {
		m.Delete([]byte(fmt.Sprintf("key-%03d", i)))
	}
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// openImage writes img to a file and runs Open and Verify on it.
func openImage(t testing.TB, dir string, img []byte) error {
	p := filepath.Join(dir, "img")
	os.Remove(p)
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Verify(); err != nil {
		return err
	}
	// A file that verifies must also read without trouble.
	m.Range(nil, nil, func(k, v []byte) bool { return true })
	return nil
}

func TestBadFiles(t *testing.T) {
	img := goodImage(t)
	dir := testDir(t)
	if err := openImage(t, dir, img); err != nil {
		t.Fatalf("good image: %v", err)
	}
	le := binary.LittleEndian
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), img...)) }
	arenaOff := le.Uint64(img[hdrArenaOffOff:])
	for _, tc := range []struct {
		name string
		img  []byte
	}{
		{"empty", nil},
		{"short header", img[:100]},
		{"header only", img[:hdrSize]},
		{"truncated", img[:len(img)-arenaAlign]},
		{"truncated odd", img[:len(img)-3]},
		{"bad magic", mut(func(b []byte) []byte { b[0] ^= 1; return b })},
		{"bad version", mut(func(b []byte) []byte { b[hdrVersionOff] = 9; return b })},
		{"bad layout sum", mut(func(b []byte) []byte { b[hdrArenaSizeOff] ^= 0x10; return b })},
		{"bad lock", mut(func(b []byte) []byte { b[lockRegionOff] ^= 0xff; return b })},
		{"bad bump", mut(func(b []byte) []byte { le.PutUint64(b[hdrBumpOff:], 1<<40); return b })},
		{"bad head", mut(func(b []byte) []byte { b[arenaOff+nodeMetaOff] ^= 1; return b })},
		{"head link out of file", mut(func(b []byte) []byte { le.PutUint64(b[arenaOff+nodeNextOff:], 1<<50); return b })},
		{"head link misaligned", mut(func(b []byte) []byte { le.PutUint64(b[arenaOff+nodeNextOff:], arenaOff+headNodeSize+8); return b })},
		{"first node key byte", mut(func(b []byte) []byte {
			n := le.Uint64(b[arenaOff+nodeNextOff:])
			b[n+nodeKeyOff(uint64(b[n+nodeMetaOff+2]))] ^= 0x40
			return b
		})},
		{"index slot", mut(func(b []byte) []byte {
			base := indexOffset + (le.Uint64(b[hdrIndexActOff:])&1)*le.Uint64(b[hdrIndexSlotsOff:])*slotSize
			for i := base; ; i += slotSize {
				if s := le.Uint64(b[i:]); s > slotTomb {
					le.PutUint64(b[i:], s+1)
					return b
				}
			}
		})},
		{"free list head", mut(func(b []byte) []byte {
			for c := range classSize {
				if o := hdrFreeHeadsOff + c*wordSize; le.Uint64(b[o:]) != 0 {
					le.PutUint64(b[o:], arenaOff+headNodeSize+blockAlign)
					return b
				}
			}
			panic("no free list")
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := openImage(t, dir, tc.img)
			if !errors.Is(err, wire.EPROTO) {
				t.Fatalf("got %v, want EPROTO", err)
			}
			t.Log(err)
		})
	}
	// Random damage: no panic, and an error or a file that reads.
	rng := rand.New(rand.NewPCG(5, 5))
	bad := 0
	for i := 0; i < 300; i++ {
		b := append([]byte(nil), img...)
		for j := 0; j < 1+rng.IntN(8); j++ {
			off := lockRegionOff + lockRegionSize + rng.IntN(len(b)-lockRegionOff-lockRegionSize)
			if rng.IntN(2) == 0 {
				off = int(arenaOff) + rng.IntN(int(le.Uint64(b[hdrBumpOff:])-arenaOff))
			}
			b[off] ^= byte(1 + rng.IntN(255))
		}
		if openImage(t, dir, b) != nil {
			bad++
		}
	}
	t.Logf("%d of 300 randomly damaged images rejected", bad)
}
