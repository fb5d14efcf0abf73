package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

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
	_, err := readImage(t, dir, img)
	return err
}

// readImage writes img to a file, runs Open and Verify on it, and returns
// the contents of a file that verifies, key and value joined by '='.
func readImage(t testing.TB, dir string, img []byte) ([]string, error) {
	p := filepath.Join(dir, "img")
	os.Remove(p)
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.Verify(); err != nil {
		return nil, err
	}
	// A file that verifies must also read without trouble.
	var kv []string
	err = m.Range(nil, nil, func(k, v []byte) bool {
		kv = append(kv, string(k)+"="+string(v))
		return true
	})
	return kv, err
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
	// Random damage: no panic, and either an error or a file that reads
	// exactly what the undamaged one holds (a damaged key or value byte
	// fails its checksum; damage elsewhere that Verify passes, in free
	// space or an unused slot, changes no content). Half of the images
	// take damage only inside the live keys and values, which Verify must
	// reject every time.
	want, err := readImage(t, dir, img)
	if err != nil {
		t.Fatal(err)
	}
	var data []int // offsets of live key and value bytes
	{
		p := filepath.Join(dir, "img")
		m, err := Open(p, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		r := m.cur.Load().r
		m.Range(nil, nil, func(k, v []byte) bool {
			for _, s := range [][]byte{k, v} {
				base := int(uintptr(unsafe.Pointer(unsafe.SliceData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(r.mem))))
				for i := range s {
					data = append(data, base+i)
				}
			}
			return true
		})
		m.Close()
	}
	rng := rand.New(rand.NewPCG(5, 5))
	bad, dataBad := 0, 0
	for i := 0; i < 300; i++ {
		b := append([]byte(nil), img...)
		inData := i%2 == 1
		for j := 0; j < 1+rng.IntN(8); j++ {
			off := lockRegionOff + lockRegionSize + rng.IntN(len(b)-lockRegionOff-lockRegionSize)
			if rng.IntN(2) == 0 {
				off = int(arenaOff) + rng.IntN(int(le.Uint64(b[hdrBumpOff:])-arenaOff))
			}
			if inData {
				off = data[rng.IntN(len(data))]
			}
			b[off] ^= byte(1 + rng.IntN(255))
		}
		got, err := readImage(t, dir, b)
		switch {
		case err != nil && !errors.Is(err, wire.EPROTO):
			t.Fatalf("image %d: %v, want EPROTO", i, err)
		case err != nil:
			bad++
			if inData {
				dataBad++
			}
		case inData:
			t.Fatalf("image %d: damage to key or value bytes passed Verify", i)
		case !slices.Equal(got, want):
			t.Fatalf("image %d passed Verify but reads %d entries unlike the original's %d", i, len(got), len(want))
		}
	}
	t.Logf("%d of 300 randomly damaged images rejected (%d of them damaged in keys or values)", bad, dataBad)
}
