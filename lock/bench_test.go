//go:build linux

package lock

import (
	"runtime"
	"sync"
	"testing"
)

// rwLocker is what the benchmarks drive: the lock under test or
// sync.RWMutex, error results dropped.
type rwLocker interface {
	Lock()
	Unlock()
	RLock()
	RUnlock()
}

// shared adapts an RWLock to rwLocker.
type shared struct{ l *RWLock }

func (s shared) Lock()    { s.l.Lock() }
func (s shared) Unlock()  { s.l.Unlock() }
func (s shared) RLock()   { s.l.RLock() }
func (s shared) RUnlock() { s.l.RUnlock() }

// benchLocks returns the two implementations under comparison.
func benchLocks(b *testing.B) []struct {
	name string
	l    rwLocker
} {
	_, l := newRegion(b)
	return []struct {
		name string
		l    rwLocker
	}{
		{"lock", shared{l}},
		{"sync.RWMutex", new(sync.RWMutex)},
	}
}

// BenchmarkUncontended measures one goroutine taking and dropping a hold.
func BenchmarkUncontended(b *testing.B) {
	for _, impl := range benchLocks(b) {
		b.Run("RLock+RUnlock/"+impl.name, func(b *testing.B) {
			l := impl.l
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				l.RLock()
				l.RUnlock()
			}
		})
		b.Run("Lock+Unlock/"+impl.name, func(b *testing.B) {
			l := impl.l
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				l.Lock()
				l.Unlock()
			}
		})
	}
}

// BenchmarkDirect measures the lock's own methods, without the interface
// adapter, for the uncontended cases.
func BenchmarkDirect(b *testing.B) {
	_, l := newRegion(b)
	b.Run("RLock+RUnlock", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l.RLock()
			l.RUnlock()
		}
	})
	b.Run("Lock+Unlock", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l.Lock()
			l.Unlock()
		}
	})
}

// readMostlyWriteEvery: one write hold in this many operations.
const readMostlyWriteEvery = 16

// BenchmarkReadMostly2 runs two goroutines of one process (one handle), 15
// reads to 1 write.
func BenchmarkReadMostly2(b *testing.B) {
	for _, impl := range benchLocks(b) {
		b.Run(impl.name, func(b *testing.B) {
			l := impl.l
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
			b.SetParallelism(1)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if i%readMostlyWriteEvery == 0 {
						l.Lock()
						l.Unlock()
					} else {
						l.RLock()
						l.RUnlock()
					}
				}
			})
		})
	}
}

// BenchmarkTwoProcess measures Lock+Unlock and RLock+RUnlock while a child
// process hammers the same lock (one write in eight operations).
func BenchmarkTwoProcess(b *testing.B) {
	for _, op := range []string{"Lock+Unlock", "RLock+RUnlock"} {
		b.Run(op, func(b *testing.B) {
			_, l, stop := startHammer(b)
			defer stop()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if op == "Lock+Unlock" {
					l.Lock()
					l.Unlock()
				} else {
					l.RLock()
					l.RUnlock()
				}
			}
		})
	}
}
