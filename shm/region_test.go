package shm

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sort"
	"testing"

	"fastcall/wire"
)

// newHeapRegion formats a map into a heap buffer; no lock, no file.
func newHeapRegion(t testing.TB, size, slots uint64) *region {
	t.Helper()
	l, ok := computeLayout(size, slots)
	if !ok {
		t.Fatalf("bad layout %d/%d", size, slots)
	}
	mem := make([]byte, size)
	r := formatRegion(mem, l, 1)
	if _, err := attachRegion(mem, ""); err != nil {
		t.Fatal(err)
	}
	return r
}

// refMap is the slow reference: a Go map plus sort.
type refMap map[string]string

func (m refMap) keys(from, to string, prefix bool) []string {
	var ks []string
	for k := range m {
		switch {
		case prefix && len(k) >= len(from) && k[:len(from)] == from:
		case !prefix && k >= from && (to == "" || k < to):
		default:
			continue
		}
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func randKey(rng *rand.Rand, space int) []byte {
	// Short keys over a small alphabet so prefixes and neighbours collide.
	n := 1 + rng.IntN(6)
	k := make([]byte, n)
	for i := range k {
		k[i] = "abcd"[rng.IntN(4)]
	}
	if space > 0 {
		k = append(k, byte('0'+rng.IntN(space)))
	}
	return k
}

func randVal(rng *rand.Rand) []byte {
	n := rng.IntN(40)
	if rng.IntN(20) == 0 {
		n = rng.IntN(3000)
	}
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	return v
}

func TestRegionAgainstReference(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  uint64
		slots uint64
		ops   int
		seed  uint64
	}{
		{"small-index", 256 << 10, 64, 12000, 1},
		{"default", 1 << 20, 0, 20000, 2},
		{"tight-arena", 128 << 10, 0, 12000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHeapRegion(t, tc.size, tc.slots)
			rng := rand.New(rand.NewPCG(tc.seed, tc.seed))
			ref := refMap{}
			buf := make([]byte, MaxValueLen)
			for op := 0; op < tc.ops; op++ {
				k := randKey(rng, 10)
				switch x := rng.IntN(10); {
				case x < 4:
					v := randVal(rng)
					err := r.putLocked(k, v)
					if errors.Is(err, wire.ENOSPC) {
						continue
					}
					if err != nil {
						t.Fatalf("op %d put: %v", op, err)
					}
					ref[string(k)] = string(v)
				case x < 6:
					err := r.deleteLocked(k)
					_, had := ref[string(k)]
					if had != (err == nil) || !had && !errors.Is(err, wire.ENOENT) {
						t.Fatalf("op %d delete %q: %v, had %v", op, k, err, had)
					}
					delete(ref, string(k))
				case x < 8:
					n, err := r.getInto(k, buf, keyHash(k))
					want, had := ref[string(k)]
					if had != (err == nil) || had && string(buf[:n]) != want {
						t.Fatalf("op %d get %q: %v", op, k, err)
					}
				default:
					prefix := x == 9
					from, to := k, randKey(rng, 10)
					if !prefix && bytes.Compare(to, from) < 0 {
						from, to = to, from
					}
					var got []string
					err := r.scan(from, to, prefix, func(k, v []byte) bool {
						if ref[string(k)] != string(v) {
							t.Fatalf("op %d scan value of %q", op, k)
						}
						got = append(got, string(k))
						return len(got) < 50
					})
					if err != nil {
						t.Fatal(err)
					}
					want := ref.keys(string(from), string(to), prefix)
					if len(want) > 50 {
						want = want[:50]
					}
					if len(got) != len(want) {
						t.Fatalf("op %d scan %q..%q prefix %v: got %d keys want %d", op, from, to, prefix, len(got), len(want))
					}
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("op %d scan order", op)
						}
					}
				}
				if op%2000 == 0 {
					if err := r.verify(true); err != nil {
						t.Fatalf("op %d: %v", op, err)
					}
				}
			}
			if err := r.verify(true); err != nil {
				t.Fatal(err)
			}
			if n := r.hdr(hdrNodesOff); n != uint64(len(ref)) {
				t.Fatalf("nodes %d want %d", n, len(ref))
			}
		})
	}
}
