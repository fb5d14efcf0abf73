// Package closing owns the rule every Close of the node services follows
// (heartbeat's Service, Master and Worker, the dispatcher, the registry
// center, the router's failover queue): the first Close ends the value,
// a later one does not end it again. The closed flag is guarded by the value's
// own mutex, so that the handlers that refuse work once closed (ECLOSED)
// read it under the lock they take anyway.
package closing

import "sync"

// Mutex is a service's mutex together with the closed flag it guards:
// embedded first in the service's mu struct, so that mu.Lock and
// mu.Closed read as the fields of that struct. The zero value is an
// unlocked, open Mutex; it must not be copied after first use.
type Mutex struct {
	sync.Mutex
	Closed bool // set once by LockToClose; read and written with the lock held
}

// LockToClose takes the lock and marks the value closed. It returns true
// with the lock held when this is the first Close: the caller takes what
// it ends from the state and unlocks. It returns false, the lock
// released, when an earlier Close did.
func (c *Mutex) LockToClose() bool {
	c.Lock()
	if c.Closed {
		c.Unlock()
		return false
	}
	c.Closed = true
	return true
}
