package registry

import "math/rand/v2"

// IDSource returns a new identifier, never 0, at each call: a client's
// id (the Client of sdk.OpID), a push stream id or cookie (CallSubscribe)
// or a log incarnation (CallLogSync). These travel in datagrams and must not
// repeat across restarts, so production draws them at random (RandomID,
// what a nil IDSource in a configuration means); the simulation passes
// one seeded per node, so that a run replays byte for byte. Safe for
// concurrent use.
type IDSource func() uint64

// OrRandom returns s, or RandomID if s is nil.
func (s IDSource) OrRandom() IDSource {
	if s == nil {
		return RandomID
	}
	return s
}

// RandomID returns a random identifier, never 0: a client's id, a push
// stream id (CallSubscribe) or a log incarnation (CallLogSync); it is
// the IDSource of production.
func RandomID() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}
