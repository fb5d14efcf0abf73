package heartbeat

import "sync"

// closing is the mutex of a Service, Master or Worker together with the
// closed flag it guards: embedded first in the type's mu struct, so that
// mu.Lock and mu.closed read as before. It owns the rule every Close of
// the package follows: the first Close ends the value, a later one
// returns at once.
type closing struct {
	sync.Mutex
	closed bool
}

// lockToClose takes the lock and marks the value closed. It returns true
// with the lock held when this is the first Close: the caller takes what
// it ends from the state and unlocks. It returns false, the lock
// released, when an earlier Close did.
func (c *closing) lockToClose() bool {
	c.Lock()
	if c.closed {
		c.Unlock()
		return false
	}
	c.closed = true
	return true
}
