package simnet

import (
	"net/netip"
	"time"
)

// rng is a splitmix64 generator: small, fast, and fully determined by its
// state, which the network seeds per datagram (mix).
type rng struct{ s uint64 }

// NewRand returns a generator seeded with seed, for a scenario's own
// draws (workload, fault schedule).
func NewRand(seed uint64) *Rand { return &Rand{rng{mix(seed, 0x5eed)}} }

// Rand is the exported form of the generator, for scenarios. It is not
// safe for concurrent use: give each goroutine its own (Fork).
type Rand struct{ r rng }

// Uint64 returns the next value.
func (r *Rand) Uint64() uint64 { return r.r.next() }

// Below returns a value in [0, n); 0 when n is 0.
func (r *Rand) Below(n uint64) uint64 { return r.r.below(n) }

// Chance reports true with probability p.
func (r *Rand) Chance(p float64) bool { return r.r.chance(p) }

// Dur returns a duration in [0, d).
func (r *Rand) Dur(d time.Duration) time.Duration { return r.r.dur(d) }

// Fork returns an independent generator named by k: the same parent
// state and k give the same child.
func (r *Rand) Fork(k uint64) *Rand { return &Rand{rng{mix(r.r.next(), k)}} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *rng) below(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	return r.next() % n
}

func (r *rng) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	return float64(r.next()>>11)/(1<<53) < p
}

func (r *rng) dur(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(r.below(uint64(d)))
}

// mix folds values into one seed.
func mix(vs ...uint64) uint64 {
	r := rng{0x6a09e667f3bcc908}
	for _, v := range vs {
		r.s ^= v
		r.s = r.next()
	}
	return r.s
}

// hashAddr folds an address into a seed value.
func hashAddr(a netip.AddrPort) uint64 {
	b := a.Addr().As16()
	var h uint64
	for _, x := range b {
		h = h*131 + uint64(x)
	}
	return h<<16 | uint64(a.Port())
}
