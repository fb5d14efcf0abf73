package simnet

import "time"

// Dist is a delay distribution: Base, plus a uniform draw in [0, Jitter),
// plus, with probability TailP, a uniform draw in [0, Tail) (a slow path).
type Dist struct {
	Base, Jitter time.Duration
	TailP        float64
	Tail         time.Duration
}

// Faults is the fault model of one direction of one link. Probabilities
// are per datagram, 0..1, drawn independently. It is the one fault model
// of the project: the simulated Network and the real-socket Relay both
// draw a datagram's fate from it with Decide.
type Faults struct {
	Loss    float64 // dropped
	Dup     float64 // delivered twice, the copy with its own delay
	Reorder float64 // held back by a further uniform draw in [0, ReorderBy)
	Corrupt float64 // one byte flipped in transit
	Delay   Dist
	// ReorderBy bounds the extra delay of a reordered datagram.
	ReorderBy time.Duration
}

// Fate is what the fault model made of one datagram: lost, or delivered
// as Copies[:N] (N is 1, or 2 for a duplicated one).
type Fate struct {
	Lost   bool
	N      int
	Copies [2]Copy
}

// Copy is one delivered copy of a datagram.
type Copy struct {
	Delay     time.Duration // from the send to the delivery
	Corrupt   bool          // byte At is xored with Xor (never 0)
	At        int
	Xor       byte
	Reordered bool // Delay holds a reordering draw
	// Key is a tie-break among the datagrams due at one instant, for
	// the simulated network's delivery order.
	Key uint64
}

// Decide draws the fate of a datagram of n bytes under f from r. The
// draws are, in order: loss; duplication; and for each copy corruption
// (and where), the delay distribution, reordering, and the copy's Key.
// The same f, n and generator state give the same Fate.
func (f *Faults) Decide(r *Rand, n int) Fate {
	var fa Fate
	if r.r.chance(f.Loss) {
		fa.Lost = true
		return fa
	}
	fa.N = 1
	if r.r.chance(f.Dup) {
		fa.N = 2
	}
	for i := 0; i < fa.N; i++ {
		c := &fa.Copies[i]
		if r.r.chance(f.Corrupt) && n > 0 {
			c.Corrupt = true
			c.At = int(r.r.below(uint64(n)))
			c.Xor = byte(1 + r.r.below(255))
		}
		c.Delay = f.Delay.Base + r.r.dur(f.Delay.Jitter)
		if r.r.chance(f.Delay.TailP) {
			c.Delay += r.r.dur(f.Delay.Tail)
		}
		if r.r.chance(f.Reorder) {
			c.Delay += r.r.dur(f.ReorderBy)
			c.Reordered = true
		}
		c.Key = r.r.next()
	}
	return fa
}

// Bytes returns a fresh copy of b as this copy delivers it (corrupted
// where the fate says).
func (c *Copy) Bytes(b []byte) []byte {
	out := append([]byte(nil), b...)
	if c.Corrupt && c.At < len(out) {
		out[c.At] ^= c.Xor
	}
	return out
}
