package shm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// The benchmark data set: benchKeys keys of 24 bytes with 64-byte values,
// in the shm map and in the in-process peers (a Go map and a sorted slice,
// each behind a sync.RWMutex). Lookups follow a random permutation so that
// neither side gets its memory in insertion order.
const (
	benchKeys   = 100000
	benchKeyLen = 24
	benchValLen = 64
	benchSpan   = 100 // keys per Range
	benchFile   = 64 << 20
)

type benchData struct {
	keys   [][]byte
	misses [][]byte
	block  []byte // every key, benchKeyLen bytes each, in key order
	mblock []byte // every missing key, likewise
	order  []int
	val    []byte
	m      *Map
	gm     *goMap
	sorted *sortedKV
}

// goMap is the in-process peer for point operations.
type goMap struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (g *goMap) get(k, dst []byte) (int, bool) {
	g.mu.RLock()
	v, ok := g.m[string(k)]
	n := copy(dst, v)
	g.mu.RUnlock()
	return n, ok
}

func (g *goMap) put(k, v []byte) {
	g.mu.Lock()
	if old, ok := g.m[string(k)]; ok && len(old) == len(v) {
		copy(old, v)
	} else {
		g.m[string(k)] = append([]byte(nil), v...)
	}
	g.mu.Unlock()
}

func (g *goMap) del(k []byte) {
	g.mu.Lock()
	delete(g.m, string(k))
	g.mu.Unlock()
}

// sortedKV is the in-process peer for Range: sorted keys, binary search.
type sortedKV struct {
	mu   sync.RWMutex
	keys [][]byte
	vals [][]byte
}

func (s *sortedKV) rangeN(from []byte, n int, fn func(k, v []byte) bool) {
	s.mu.RLock()
	i := sort.Search(len(s.keys), func(i int) bool { return bytes.Compare(s.keys[i], from) >= 0 })
	for ; i < len(s.keys) && n > 0; i, n = i+1, n-1 {
		if !fn(s.keys[i], s.vals[i]) {
			break
		}
	}
	s.mu.RUnlock()
}

var bench struct {
	once sync.Once
	d    *benchData
	err  error
}

func benchKey(i int, salt byte) []byte {
	return []byte(fmt.Sprintf("%016x%c%07d", xxhash.Sum64String(fmt.Sprint(i)), salt, i))[:benchKeyLen]
}

func loadBench(b *testing.B) *benchData {
	bench.once.Do(func() {
		d := &benchData{val: bytes.Repeat([]byte("v"), benchValLen)}
		d.m, bench.err = Create(filepath.Join(testDir(b), "bench"), benchFile, Options{})
		if bench.err != nil {
			return
		}
		d.gm = &goMap{m: make(map[string][]byte, benchKeys)}
		d.sorted = &sortedKV{}
		// The callers' keys sit in one block, as a caller's own array
		// of keys would, rather than scattered among the set-up's
		// allocations: both maps read them the same way.
		block := make([]byte, 0, benchKeys*benchKeyLen)
		mblock := make([]byte, 0, benchKeys*benchKeyLen)
		for i := 0; i < benchKeys; i++ {
			block = append(block, benchKey(i, 'k')...)
			mblock = append(mblock, benchKey(i, 'm')...)
		}
		d.block, d.mblock = block, mblock
		for i := 0; i < benchKeys; i++ {
			k := d.key(i)
			d.keys = append(d.keys, k)
			d.misses = append(d.misses, d.miss(i))
			if bench.err = d.m.Put(k, d.val); bench.err != nil {
				return
			}
			d.gm.put(k, d.val)
			d.sorted.keys = append(d.sorted.keys, k)
			d.sorted.vals = append(d.sorted.vals, append([]byte(nil), d.val...))
		}
		sort.Sort(byKey{d.sorted})
		d.order = rand.New(rand.NewPCG(1, 2)).Perm(benchKeys)
		bench.d = d
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.d
}

// key and miss return key i and missing key i from their blocks. The
// timed loops take keys this way, so that an operation's cost holds no
// load of a slice header from a 2.4 MB array of them: the harness's own
// random read, which both maps paid alike.
func (d *benchData) key(i int) []byte {
	return d.block[i*benchKeyLen : (i+1)*benchKeyLen : (i+1)*benchKeyLen]
}

func (d *benchData) miss(i int) []byte {
	return d.mblock[i*benchKeyLen : (i+1)*benchKeyLen : (i+1)*benchKeyLen]
}

type byKey struct{ s *sortedKV }

func (x byKey) Len() int           { return len(x.s.keys) }
func (x byKey) Less(i, j int) bool { return bytes.Compare(x.s.keys[i], x.s.keys[j]) < 0 }
func (x byKey) Swap(i, j int) {
	x.s.keys[i], x.s.keys[j] = x.s.keys[j], x.s.keys[i]
	x.s.vals[i], x.s.vals[j] = x.s.vals[j], x.s.vals[i]
}

func BenchmarkGet(b *testing.B) {
	d := loadBench(b)
	buf := make([]byte, benchValLen)
	// shmHits is the timed loop of the shm hits: every key, in d.order.
	shmHits := func(b *testing.B) {
		b.SetBytes(benchValLen)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := d.m.Get(d.key(d.order[i%benchKeys]), buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("shm/hit", shmHits)
	b.Run("gomap/hit", func(b *testing.B) {
		b.SetBytes(benchValLen)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := d.gm.get(d.key(d.order[i%benchKeys]), buf); !ok {
				b.Fatal("miss")
			}
		}
	})
	// Every value replaced once before the timed loop: replace keeps a
	// value that fits in its node, where Get reads it first.
	b.Run("shm/hit-replaced", func(b *testing.B) {
		for i := 0; i < benchKeys; i++ {
			if err := d.m.Put(d.key(i), d.val); err != nil {
				b.Fatal(err)
			}
		}
		shmHits(b)
	})
	b.Run("shm/miss", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := d.m.Get(d.miss(d.order[i%benchKeys]), buf); err == nil {
				b.Fatal("hit")
			}
		}
	})
	b.Run("gomap/miss", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := d.gm.get(d.miss(d.order[i%benchKeys]), buf); ok {
				b.Fatal("hit")
			}
		}
	})
	b.Run("shm/hit-parallel", func(b *testing.B) {
		b.SetBytes(benchValLen)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, benchValLen)
			for i := rand.IntN(benchKeys); pb.Next(); i++ {
				d.m.Get(d.key(d.order[i%benchKeys]), buf)
			}
		})
	})
	b.Run("gomap/hit-parallel", func(b *testing.B) {
		b.SetBytes(benchValLen)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, benchValLen)
			for i := rand.IntN(benchKeys); pb.Next(); i++ {
				d.gm.get(d.key(d.order[i%benchKeys]), buf)
			}
		})
	})
}

// BenchmarkPut replaces the value of existing keys.
func BenchmarkPut(b *testing.B) {
	d := loadBench(b)
	b.Run("shm", func(b *testing.B) {
		b.SetBytes(benchValLen)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := d.m.Put(d.key(d.order[i%benchKeys]), d.val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gomap", func(b *testing.B) {
		b.SetBytes(benchValLen)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d.gm.put(d.key(d.order[i%benchKeys]), d.val)
		}
	})
}

// BenchmarkDelete deletes a key and inserts it again: one op is the pair,
// which keeps the data set at benchKeys keys.
func BenchmarkDelete(b *testing.B) {
	d := loadBench(b)
	b.Run("shm/delete+insert", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := d.key(d.order[i%benchKeys])
			if err := d.m.Delete(k); err != nil {
				b.Fatal(err)
			}
			if err := d.m.Put(k, d.val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gomap/delete+insert", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := d.key(d.order[i%benchKeys])
			d.gm.del(k)
			d.gm.put(k, d.val)
		}
	})
}

// BenchmarkRange reads benchSpan consecutive keys from a random start.
func BenchmarkRange(b *testing.B) {
	d := loadBench(b)
	b.Run("shm", func(b *testing.B) {
		b.SetBytes(benchSpan * benchValLen)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			n := 0
			d.m.Range(d.key(d.order[i%benchKeys]), nil, func(k, v []byte) bool {
				n++
				return n < benchSpan
			})
		}
	})
	b.Run("sorted-slice", func(b *testing.B) {
		b.SetBytes(benchSpan * benchValLen)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			n := 0
			d.sorted.rangeN(d.key(d.order[i%benchKeys]), benchSpan, func(k, v []byte) bool {
				n++
				return true
			})
		}
	})
}

// BenchmarkMemoryLatency is a probe of the platform, not of this package:
// one dependent random read (pointer chase over 20 MiB) in Go heap memory
// and in a shared mapping of a /dev/shm file. Every Get is a short chain of
// such reads (key, index slot, node), so their cost sets Get's floor.
func BenchmarkMemoryLatency(b *testing.B) {
	const span = 20 << 20
	chase := func(b *testing.B, mem []byte) {
		n := span / cacheLine
		perm := rand.New(rand.NewPCG(3, 4)).Perm(n)
		for i := 0; i < n; i++ {
			store64(mem, uint64(perm[i]*cacheLine), uint64(perm[(i+1)%n]*cacheLine))
		}
		off := uint64(0)
		for b.Loop() {
			off = load64(mem, off)
		}
	}
	b.Run("heap", func(b *testing.B) { chase(b, make([]byte, span)) })
	b.Run("shm", func(b *testing.B) {
		m, _ := mustCreate(b, 2*span)
		r := m.cur.Load().r
		chase(b, r.mem[r.arenaOff:r.arenaOff+span])
	})
}

// BenchmarkGetChain takes Get's hit path apart, with the same key order:
// a node read alone (offsets known in advance, each read dependent on the
// one before), and Get's index lookup (getValue, the locked path's) with
// the hash known in advance.
func BenchmarkGetChain(b *testing.B) {
	d := loadBench(b)
	r := d.m.cur.Load().r
	offs := make([]uint64, benchKeys)
	hashes := make([]uint64, benchKeys)
	for i, k := range d.keys {
		hashes[i] = keyHash(k)
		n, ok := r.find(k, hashes[i])
		if !ok {
			b.Fatal("key not found")
		}
		offs[i] = n.off
	}
	b.Run("node-read", func(b *testing.B) {
		dep := uint64(0)
		for i := 0; b.Loop(); i++ {
			dep = load64(r.mem, offs[d.order[i%benchKeys]]+dep&1+nodeMetaOff) >> 63
		}
	})
	b.Run("lookup-prehashed", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			j := d.order[i%benchKeys]
			r.getValue(d.keys[j], hashes[j])
		}
	})
}
