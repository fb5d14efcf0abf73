package closing

import (
	"sync"
	"testing"
)

// TestLockToCloseOnce: of many concurrent Closes exactly one is the
// first; it holds the lock when LockToClose returns, and the value reads
// closed from then on.
func TestLockToCloseOnce(t *testing.T) {
	var mu Mutex
	const closers = 16
	var wg sync.WaitGroup
	firsts := make(chan int, closers)
	for i := range closers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if mu.LockToClose() {
				if mu.TryLock() {
					t.Error("the first Close returned without the lock held")
				}
				firsts <- i
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(firsts)
	if n := len(firsts); n != 1 {
		t.Fatalf("%d Closes saw themselves first, want 1", n)
	}
	if !mu.TryLock() {
		t.Fatal("a later Close left the lock held")
	}
	defer mu.Unlock()
	if !mu.Closed {
		t.Fatal("not closed after LockToClose")
	}
}
