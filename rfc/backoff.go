package rfc

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"time"
)

// Backoff is the one retry wait of fastcall: a capped, jittered, doubling
// wait between the tries of a retry loop. Each Next returns a random
// duration between half and all of the current step and doubles the step
// up to Max. The zero step is Min. A Backoff is used by one goroutine.
//
// The jitter comes from a generator seeded from crypto/rand when the
// Backoff is first used, so that a simulation that makes crypto/rand
// deterministic (testing/cryptotest) replays its waits.
type Backoff struct {
	Min  time.Duration // first step; must be positive
	Max  time.Duration // largest step; below Min it is taken as Min
	step time.Duration
	rnd  *rand.ChaCha8
}

// Reset starts the doubling again from Min (after a success).
func (b *Backoff) Reset() { b.step = 0 }

// Next returns the next wait and advances the step.
func (b *Backoff) Next() time.Duration {
	if b.step < b.Min {
		b.step = b.Min
	}
	if b.rnd == nil {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		b.rnd = rand.NewChaCha8(seed)
	}
	half := b.step / 2
	d := half + time.Duration(b.rnd.Uint64()%uint64(b.step-half+1))
	if b.step < b.Max {
		b.step = min(2*b.step, b.Max)
	}
	return d
}

// Wait waits the next wait. It reports false, having waited less, when
// ctx ends or stop is closed first; stop may be nil.
func (b *Backoff) Wait(ctx context.Context, stop <-chan struct{}) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
