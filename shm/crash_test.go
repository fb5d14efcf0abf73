package shm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"fastcall/wire"
)

// errCrash is what the store hook panics with to simulate a writer killed
// before its n-th store.
var errCrash = errors.New("simulated crash")

// runUntilStore runs op with the writer stopped dead before store number n
// (1-based). It reports whether op ran to completion.
func runUntilStore(n int, op func()) (completed bool) {
	count := 0
	storeHook = func() {
		count++
		if count == n {
			panic(errCrash)
		}
	}
	defer func() {
		storeHook = nil
		if p := recover(); p != nil && p != errCrash {
			panic(p)
		}
	}()
	op()
	return true
}

// regionState reads every key of r through the index (Get's path).
func regionState(r *region, keys []string) map[string]string {
	st := map[string]string{}
	buf := make([]byte, MaxValueLen)
	for _, k := range keys {
		if n, err := r.getInto([]byte(k), buf, keyHash([]byte(k))); err == nil {
			st[k] = string(buf[:n])
		}
	}
	return st
}

// scanDiffers reads every key of r along level 0 (Range's path) and
// returns the first key whose value differs from want's ("" and false if
// none), or the number of keys that were missed.
func scanDiffers(r *region, want map[string]string) (string, bool, error) {
	bad, found, n := "", false, 0
	err := r.scan(nil, nil, false, func(k, v []byte) bool {
		n++
		if w, ok := want[string(k)]; !ok || w != string(v) {
			bad, found = string(k), true
			return false
		}
		return true
	})
	if err == nil && !found && n != len(want) {
		for k := range want {
			var got []byte
			r.scan([]byte(k), nil, false, func(kk, v []byte) bool {
				if string(kk) == k {
					got = v
				}
				return false
			})
			if got == nil {
				return k, true, nil
			}
		}
	}
	return bad, found, err
}

// sameState reports the first key on which a and b differ.
func sameState(a, b map[string]string) (string, bool) {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return k, false
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return k, false
		}
	}
	return "", true
}

// checkSettled checks that Get and Range agree on what a stopped writer
// left (seen, read through the index), and that repaired, read after a
// repair, is the same: a repair never brings back a key that readers saw
// deleted, nor takes away one they saw inserted.
func checkSettled(t *testing.T, n int, r *region, seen, repaired map[string]string) {
	t.Helper()
	now := seen
	if repaired != nil {
		if k, ok := sameState(seen, repaired); !ok {
			t.Fatalf("stop before store %d: key %s reads %.40q before the repair, %.40q after it", n, k, seen[k], repaired[k])
		}
		now = repaired
	}
	k, differs, err := scanDiffers(r, now)
	if err != nil {
		t.Fatalf("stop before store %d: range: %v", n, err)
	}
	if differs {
		t.Fatalf("stop before store %d (repaired: %v): key %s: Get reads %.40q, Range reads otherwise", n, repaired != nil, k, now[k])
	}
}

// TestCrashAtEveryStore stops a writer before each of its stores in turn,
// for every kind of write, and checks after each stop that the region
// verifies (tolerant), that every other key reads as before, that the key
// being written reads as before or after, that Get and Range agree, and
// that Repair restores the strict invariants without changing what readers
// saw — then that a repair stopped at any store is itself repaired.
func TestCrashAtEveryStore(t *testing.T) {
	big := bytes.Repeat([]byte("E"), 300)
	type scenario struct {
		name  string
		size  uint64
		slots uint64
		setup func(r *region)
		op    func(r *region) error
		key   string
	}
	// Index slots in use before and after the operation, where it resizes
	// the index.
	resize := map[string][2]uint64{"insert-grows-index": {64, 128}, "delete-shrinks-index": {512, 256}}
	fill := func(n int) func(r *region) {
		return func(r *region) {
			for i := 0; i < n; i++ {
				if err := r.putLocked([]byte(fmt.Sprintf("key%04d", i)), []byte(fmt.Sprintf("val%d", i))); err != nil {
					panic(err)
				}
			}
		}
	}
	put := func(k string, v []byte) func(r *region) error {
		return func(r *region) error { return r.putLocked([]byte(k), v) }
	}
	del := func(k string) func(r *region) error {
		return func(r *region) error { return r.deleteLocked([]byte(k)) }
	}
	scenarios := []scenario{
		{"insert", MinSize, 0, fill(120), put("key0100x", []byte("new")), "key0100x"},
		{"insert-first", MinSize, 0, fill(50), put("a", []byte("new")), "a"},
		{"replace-to-external", MinSize, 0, fill(100), put("key0042", big), "key0042"},
		// Inline to inline: committed in a value block first, then inline.
		{"replace-inline-to-inline", MinSize, 0, fill(100), put("key0042", []byte("VAL42")), "key0042"},
		{"replace-external-to-inline", MinSize, 0, func(r *region) {
			fill(100)(r)
			r.putLocked([]byte("key0042"), big)
		}, put("key0042", []byte("v")), "key0042"},
		{"replace-external-to-external", MinSize, 0, func(r *region) {
			fill(100)(r)
			r.putLocked([]byte("key0042"), big)
		}, put("key0042", append(big, big...)), "key0042"},
		{"delete", MinSize, 0, fill(120), del("key0100"), "key0100"},
		{"delete-external", MinSize, 0, func(r *region) {
			fill(100)(r)
			r.putLocked([]byte("key0042"), big)
		}, del("key0042"), "key0042"},
		{"delete-rebuilds-index", MinSize, 64, func(r *region) {
			fill(40)(r)
			for i := 0; i < 16; i++ {
				r.deleteLocked([]byte(fmt.Sprintf("key%04d", i)))
			}
		}, del("key0030"), "key0030"},
		{"insert-coalesces", MinSize, 0, func(r *region) {
			for i := 0; ; i++ {
				if r.putLocked([]byte(fmt.Sprintf("key%04d", i)), []byte("0123456789abcdef")) != nil {
					break
				}
			}
			for i := 0; i < 40; i++ {
				r.deleteLocked([]byte(fmt.Sprintf("key%04d", i)))
			}
		}, put("zzz", bytes.Repeat([]byte("L"), 1000)), "zzz"},
		// The 49th key passes 3/4 of the first 64 slots: the index grows.
		{"insert-grows-index", MinSize, 0, fill(48), put("key0100x", []byte("new")), "key0100x"},
		// The 129th tombstone passes 1/4 of 512 slots: the rebuild sizes
		// the index for the 71 keys left.
		{"delete-shrinks-index", MinSize, 0, func(r *region) {
			fill(200)(r)
			for i := 0; i < 128; i++ {
				r.deleteLocked([]byte(fmt.Sprintf("key%04d", i)))
			}
		}, del("key0150"), "key0150"},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := newHeapRegion(t, sc.size, sc.slots)
			sc.setup(r)
			if err := r.verify(true); err != nil {
				t.Fatal(err)
			}
			snap := append([]byte(nil), r.mem...)
			rng := r.rng
			var keys []string
			r.scan(nil, nil, false, func(k, v []byte) bool { keys = append(keys, string(k)); return true })
			keys = append(keys, sc.key)
			before := regionState(r, keys)
			// The final state, from an uninterrupted run.
			want, resizes := resize[sc.name]
			if _, mask := r.activeIndex(); resizes && mask+1 != want[0] {
				t.Fatalf("index uses %d slots before the operation, want %d", mask+1, want[0])
			}
			if err := sc.op(r); err != nil && !errors.Is(err, wire.ENOSPC) {
				t.Fatal(err)
			}
			if _, mask := r.activeIndex(); resizes && mask+1 != want[1] {
				t.Fatalf("index uses %d slots after the operation, want %d", mask+1, want[1])
			}
			after := regionState(r, keys)
			stops := 0
			// Every store; past the first 64, every 4th under -race or
			// -short (the mutation run uses -short).
			step := 1
			for n := 1; ; n += step {
				if (raceEnabled || testing.Short()) && n > 64 {
					step = 4
				}
				copy(r.mem, snap)
				r.rng = rng
				if runUntilStore(n, func() { sc.op(r) }) {
					break
				}
				stops++
				if err := r.verify(false); err != nil {
					t.Fatalf("stop before store %d: tolerant verify: %v", n, err)
				}
				seen := regionState(r, keys)
				checkStates(t, n, "after stop", seen, before, after, sc.key)
				checkSettled(t, n, r, seen, nil)
				mid := append([]byte(nil), r.mem...)
				if err := r.repairLocked(); err != nil {
					t.Fatalf("stop before store %d: repair: %v", n, err)
				}
				repaired := regionState(r, keys)
				checkStates(t, n, "after repair", repaired, before, after, sc.key)
				checkSettled(t, n, r, seen, repaired)
				// A repair that dies is repaired by the next one (sampled:
				// every stride-th stop of the repair, for some stops).
				if n%7 != 1 {
					continue
				}
				for m := 1; ; m += 17 {
					copy(r.mem, mid)
					if runUntilStore(m, func() { r.repairLocked() }) {
						break
					}
					if err := r.verify(false); err != nil {
						t.Fatalf("stop %d, repair stop %d: tolerant verify: %v", n, m, err)
					}
					checkSettled(t, n, r, seen, regionState(r, keys))
					if err := r.repairLocked(); err != nil {
						t.Fatalf("stop %d, repair stop %d: second repair: %v", n, m, err)
					}
					again := regionState(r, keys)
					checkStates(t, n, "after second repair", again, repaired, repaired, sc.key)
					checkSettled(t, n, r, seen, again)
				}
			}
			if stops == 0 {
				t.Fatal("operation made no stores")
			}
			t.Logf("%d stop points", stops)
		})
	}
}

func checkStates(t *testing.T, n int, when string, got, before, after map[string]string, key string) {
	t.Helper()
	for k, v := range before {
		if k != key && got[k] != v {
			t.Fatalf("stop before store %d, %s: key %s reads %q want %q", n, when, k, got[k], v)
		}
	}
	if len(got) < len(before)-1 || len(got) > len(before)+1 {
		t.Fatalf("stop before store %d, %s: %d keys, before %d", n, when, len(got), len(before))
	}
	gv, gok := got[key]
	bv, bok := before[key]
	av, aok := after[key]
	if !(gok == bok && gv == bv) && !(gok == aok && gv == av) {
		t.Fatalf("stop before store %d, %s: key %s reads %q/%v, neither before %q/%v nor after %q/%v",
			n, when, key, gv, gok, bv, bok, av, aok)
	}
}
