package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"fastcall/shm"
)

// The shm case: 100,000 keys of 24 bytes with 64-byte values.
const (
	shmKeys     = 100000
	shmKeyLen   = 24
	shmValLen   = 64
	shmRangeLen = 100 // keys per Range operation
	shmFileSize = 64 << 20
)

func shmKey(i int) []byte {
	k := fmt.Sprintf("bench/key/%014d", i)
	if len(k) != shmKeyLen {
		panic("shm bench key length")
	}
	return []byte(k)
}

// keyBlock holds every key in one block, as a caller's own array of keys
// would be. Keys made one by one between the set-up's other allocations
// would each share a cache line with whatever came next (the Go map's
// copy of that key, say), which favours one system over the other for
// reasons of the harness. The timed loops take key i from the block by
// its index rather than from a [][]byte, whose 2.4 MB of slice headers
// would add a random read of the harness's own to every operation of
// both systems.
type keyBlock []byte

func shmKeyBlock() keyBlock {
	block := make([]byte, 0, shmKeys*shmKeyLen)
	for i := 0; i < shmKeys; i++ {
		block = append(block, shmKey(i)...)
	}
	return block
}

func (b keyBlock) key(i int) []byte {
	return b[i*shmKeyLen : (i+1)*shmKeyLen : (i+1)*shmKeyLen]
}

// rng is a xorshift generator, one per goroutine.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return x
}

// rngs are per-goroutine generators, padded apart.
type rngs [][8]uint64

func newRngs(n int) rngs {
	r := make(rngs, n)
	for i := range r {
		r[i][0] = uint64(i)*0x9E3779B97F4A7C15 + 1
	}
	return r
}

func (r rngs) key(w int) int {
	g := (*rng)(&r[w][0])
	return int(g.next() % shmKeys)
}

// goMap is the reference: a Go map guarded by a sync.RWMutex, with a
// sorted key slice for ranges.
type goMap struct {
	mu     sync.RWMutex
	m      map[string][]byte
	sorted []string
}

// shmDir is /dev/shm where there is one, else the temporary directory.
func shmDir() string {
	if st, err := os.Stat(shm.DefaultDir); err == nil && st.IsDir() {
		return shm.DefaultDir
	}
	return os.TempDir()
}

// RunShm measures Get, Put and Range on a shm.Map against a Go map with a
// sync.RWMutex, from 1 and 2 goroutines, and Get from a second process
// that opens the map read-only (the read path of local readers).
func RunShm(o Options, progress func(string)) ([]OpResult, error) {
	path := filepath.Join(shmDir(), fmt.Sprintf("fcbench-%d.map", os.Getpid()))
	os.Remove(path)
	m, err := shm.Create(path, shmFileSize, shm.DefaultOptions())
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	defer m.Close()
	keys := shmKeyBlock()
	gm := &goMap{m: make(map[string][]byte, shmKeys)}
	val := make([]byte, shmValLen)
	for i := 0; i < shmKeys; i++ {
		if err := m.Put(keys.key(i), val); err != nil {
			return nil, fmt.Errorf("shm Put key %d: %v", i, err)
		}
		gm.m[string(keys.key(i))] = append([]byte(nil), val...)
		gm.sorted = append(gm.sorted, string(keys.key(i)))
	}
	sort.Strings(gm.sorted)
	gkeys := gm.sorted // same order as keys
	var out []OpResult
	for _, g := range []int{1, 2} {
		r := newRngs(g)
		dsts := make([][]byte, g)
		vals := make([][]byte, g)
		for i := range dsts {
			dsts[i] = make([]byte, shmValLen)
			vals[i] = make([]byte, shmValLen)
		}
		sink := make([][8]int, g)
		name := func(op string) string {
			if g == 1 {
				return op + ", 1 goroutine"
			}
			return op + ", " + itoa(g) + " goroutines"
		}
		groups := []struct {
			op         string
			shmOp, gOp func(w, i int)
		}{
			{"Get",
				func(w, _ int) {
					n, err := m.Get(keys.key(r.key(w)), dsts[w])
					if err != nil || n != shmValLen {
						panic("shm Get failed")
					}
				},
				func(w, _ int) {
					k := keys.key(r.key(w))
					gm.mu.RLock()
					v, ok := gm.m[string(k)]
					copy(dsts[w], v)
					gm.mu.RUnlock()
					if !ok {
						panic("map Get failed")
					}
				}},
			{"Put (replace)",
				func(w, i int) {
					vals[w][0] = byte(i)
					if err := m.Put(keys.key(r.key(w)), vals[w]); err != nil {
						panic("shm Put failed: " + err.Error())
					}
				},
				func(w, i int) {
					vals[w][0] = byte(i)
					k := gkeys[r.key(w)]
					v := append([]byte(nil), vals[w]...) // the map keeps its own copy, as shm does
					gm.mu.Lock()
					gm.m[k] = v
					gm.mu.Unlock()
				}},
			{"Range (100 keys)",
				func(w, _ int) {
					i := r.key(w) % (shmKeys - shmRangeLen)
					n := 0
					err := m.Range(keys.key(i), nil, func(k, v []byte) bool {
						n++
						return n < shmRangeLen
					})
					if err != nil || n != shmRangeLen {
						panic("shm Range failed")
					}
					sink[w][0] += n
				},
				func(w, _ int) {
					from := gkeys[r.key(w)%(shmKeys-shmRangeLen)]
					gm.mu.RLock()
					j := sort.SearchStrings(gm.sorted, from)
					n := 0
					for _, k := range gm.sorted[j : j+shmRangeLen] {
						n += len(gm.m[k])
					}
					gm.mu.RUnlock()
					sink[w][0] += n
				}},
		}
		for _, gr := range groups {
			rs, err := runOpGroup(name(gr.op), o, []opSystem{
				{name: "shm.Map", base: true, g: g, op: gr.shmOp},
				{name: "Go map + sync.RWMutex", g: g, op: gr.gOp},
			}, progress)
			if err != nil {
				return nil, err
			}
			if gr.op == "Range (100 keys)" {
				rs[1].Note = "sorted key slice + map lookups"
			}
			out = append(out, rs...)
		}
	}
	// Get from a second process, the map opened read-only.
	rs, err := runOpGroup("Get, second process", o, []opSystem{
		{name: "shm.Map, read-only Open in another process", base: true, run: func() (opRound, error) {
			c, err := startChild("shm-get", path, o)
			if err != nil {
				return opRound{}, err
			}
			return c.result()
		}},
	}, progress)
	if err != nil {
		return nil, err
	}
	return append(out, rs...), nil
}

// shmChildGet is the child's side of "Get, second process".
func shmChildGet(path string) (func(w, i int), func(), error) {
	opts := shm.DefaultOptions()
	opts.ReadOnly = true
	m, err := shm.Open(path, opts)
	if err != nil {
		return nil, nil, err
	}
	keys := shmKeyBlock()
	r := newRngs(1)
	dst := make([]byte, shmValLen)
	op := func(w, _ int) {
		if n, err := m.Get(keys.key(r.key(w)), dst); err != nil || n != shmValLen {
			panic("child Get failed")
		}
	}
	return op, func() { m.Close() }, nil
}
