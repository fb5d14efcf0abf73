package center

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"fastcall/node/registry/sdk"
)

// TestTakeDueAgainstModel drives a store with random writes (some with
// no deadline), in-place lease renewals and sweeps, whose expiries
// either succeed (the key is removed) or fail and are handed back, at
// times after writes of other keys enough to rebuild the heaps; each
// sweep must take every stored entry that is due, once, and no other.
func TestTakeDueAgainstModel(t *testing.T) {
	const seeds, steps, nkeys = 200, 2000, 40
	for seed := int64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewSource(seed))
		s := newStore()
		keys := make([]string, nkeys)
		for i := range keys {
			keys[i] = fmt.Sprintf("k/%02d", i)
		}
		var nowMs, monoNs int64 = 1000, 1000
		for step := 0; step < steps; step++ {
			k := keys[rng.Intn(len(keys))]
			switch op := rng.Intn(10); {
			case op < 3:
				s.set(k, &entry{kind: sdk.KindKV, expireMs: nowMs + int64(rng.Intn(50))})
			case op < 5:
				l := int64(1 + rng.Intn(50))
				s.set(k, &entry{kind: sdk.KindService, leaseMs: l, leaseDue: monoNs + l})
			case op < 6:
				if e := s.get(k); e != nil && e.kind == sdk.KindService {
					e.leaseDue = monoNs + e.leaseMs // renewOwner
				}
			case op < 7:
				s.set(k, &entry{kind: sdk.KindKV})
			default:
				nowMs += int64(rng.Intn(10))
				monoNs += int64(rng.Intn(10))
				var want []string
				for _, kk := range s.keys {
					if s.m[kk].due(nowMs, monoNs) {
						want = append(want, kk)
					}
				}
				var got []string
				var taken []*entry
				s.takeDue(nowMs, monoNs, func(kk string, e *entry) {
					got = append(got, kk)
					taken = append(taken, e)
				})
				gen := s.rebuilds
				sorted := slices.Sorted(slices.Values(got))
				if !slices.Equal(sorted, want) {
					t.Fatalf("seed %d step %d at %d ms / %d ns: took %q, want %q", seed, step, nowMs, monoNs, sorted, want)
				}
				// Writes of other keys while the expiries are written,
				// now and then enough to rebuild the heaps.
				n := rng.Intn(3)
				if rng.Intn(20) == 0 {
					n = 2 * dueSlack
				}
				for range n {
					s.set(keys[rng.Intn(len(keys))], &entry{kind: sdk.KindKV, expireMs: nowMs + 1000})
				}
				for i, e := range taken {
					switch {
					case s.get(got[i]) != e:
						// Replaced meanwhile.
					case rng.Intn(2) == 0:
						s.remove(got[i]) // expired
					default:
						s.handBack(got[i], e, gen) // the expiry's write failed
					}
				}
			}
		}
	}
}
