//go:build linux

package lock_test

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"fastcall/lock"
	"fastcall/wire"
)

// The lock lives in shared memory: normally the first lock.Size bytes of
// a MAP_SHARED file mapping that several processes map. Init formats it
// once; every process then takes its own handle with Attach. Here two
// handles of one process stand in for two processes.
func Example() {
	mem, err := unix.Mmap(-1, 0, lock.Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANON)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(mem)
	a, err := lock.Init(mem) // the first process
	if err != nil {
		panic(err)
	}
	defer a.Detach()
	b, err := lock.Attach(mem) // another process
	if err != nil {
		panic(err)
	}
	defer b.Detach()

	if err := a.RLock(); err != nil {
		panic(err)
	}
	// A writer waits for the reader; with a timeout it gives up with
	// ETIMEDOUT.
	err = b.LockTimeout(20 * time.Millisecond)
	fmt.Println("write while read-held:", errors.Is(err, wire.ETIMEDOUT))
	a.RUnlock()

	if err := b.Lock(); err != nil {
		// wire.EOWNERDEAD here would mean a previous writer died
		// inside: verify and repair the data, then MarkConsistent.
		panic(err)
	}
	fmt.Println("write after the reader left: ok")
	b.Unlock()
	// Output:
	// write while read-held: true
	// write after the reader left: ok
}
