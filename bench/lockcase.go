package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"fastcall/lock"
)

// writeEvery is one write hold per this many operations in the
// read-mostly workload.
const writeEvery = 100

// mapRegion maps lock.Size bytes shared: of a file when path is not "",
// else anonymous.
func mapRegion(path string) ([]byte, func(), error) {
	if path == "" {
		b, err := syscall.Mmap(-1, 0, lock.Size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_ANON)
		if err != nil {
			return nil, nil, err
		}
		return b, func() { syscall.Munmap(b) }, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if err := f.Truncate(lock.Size); err != nil {
		return nil, nil, err
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, lock.Size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { syscall.Munmap(b) }, nil
}

// guarded is the data the locks guard in the workloads.
type guarded struct {
	_ [64]byte
	n uint64
	_ [56]byte
}

// readMostly is the read-mostly workload over wr and rd: a write every
// writeEvery operations, reads between.
func readMostly(wr, rd func(w, i int)) func(w, i int) {
	return func(w, i int) {
		if i%writeEvery == 0 {
			wr(w, i)
		} else {
			rd(w, i)
		}
	}
}

func rwLockOps(l *lock.RWLock, data *guarded) (wr, rd, mostly func(w, i int)) {
	wr = func(_, _ int) {
		if l.Lock() != nil {
			panic("lock.Lock failed")
		}
		data.n++
		l.Unlock()
	}
	rd = func(_, _ int) {
		if l.RLock() != nil {
			panic("lock.RLock failed")
		}
		_ = data.n
		l.RUnlock()
	}
	return wr, rd, readMostly(wr, rd)
}

func mutexOps(mu *sync.RWMutex, data *guarded) (wr, rd, mostly func(w, i int)) {
	wr = func(_, _ int) {
		mu.Lock()
		data.n++
		mu.Unlock()
	}
	rd = func(_, _ int) {
		mu.RLock()
		_ = data.n
		mu.RUnlock()
	}
	return wr, rd, readMostly(wr, rd)
}

// initRegion maps a region (see mapRegion) and formats a lock in it;
// release detaches the lock and unmaps the region.
func initRegion(path string) (l *lock.RWLock, release func(), err error) {
	mem, unmap, err := mapRegion(path)
	if err != nil {
		return nil, nil, err
	}
	if l, err = lock.Init(mem); err != nil {
		unmap()
		return nil, nil, err
	}
	return l, func() { l.Detach(); unmap() }, nil
}

// RunLock measures lock.RWLock against sync.RWMutex: uncontended write
// and read holds, read-mostly (one write hold per writeEvery) from 2
// goroutines, and read-mostly from two processes (one goroutine each).
func RunLock(o Options, progress func(string)) ([]OpResult, error) {
	l, release, err := initRegion("")
	if err != nil {
		return nil, err
	}
	defer release()
	var ld, md guarded
	var mu sync.RWMutex
	lw, lr, lm := rwLockOps(l, &ld)
	mw, mr, mm := mutexOps(&mu, &md)
	var out []OpResult
	for _, gr := range []struct {
		name   string
		g      int
		lk, mx func(w, i int)
	}{
		{"Lock+Unlock, uncontended", 1, lw, mw},
		{"RLock+RUnlock, uncontended", 1, lr, mr},
		{fmt.Sprintf("read-mostly (1 write in %d), 2 goroutines", writeEvery), 2, lm, mm},
	} {
		rs, err := runOpGroup(gr.name, o, []opSystem{
			{name: "lock.RWLock", base: true, g: gr.g, op: gr.lk},
			{name: "sync.RWMutex", g: gr.g, op: gr.mx},
		}, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	// Two processes on one region in a shared file.
	path := filepath.Join(shmDir(), fmt.Sprintf("fcbench-%d.lock", os.Getpid()))
	defer os.Remove(path)
	fl, frelease, err := initRegion(path)
	if err != nil {
		return nil, err
	}
	defer frelease()
	var fd guarded
	_, _, fm := rwLockOps(fl, &fd)
	rs, err := runOpGroup(fmt.Sprintf("read-mostly (1 write in %d), 2 processes", writeEvery), o, []opSystem{
		{name: "lock.RWLock", base: true, run: func() (opRound, error) {
			c, err := startChild("lock-readmostly", path, o)
			if err != nil {
				return opRound{}, err
			}
			ops, el, al := MeasureOps(1, o.Warmup, o.Duration, fm)
			mine := roundOf(1, ops, el, al)
			theirs, err := c.result()
			if err != nil {
				return opRound{}, err
			}
			return opRound{nsOp: (mine.nsOp + theirs.nsOp) / 2, opsSec: mine.opsSec + theirs.opsSec, allocs: mine.allocs}, nil
		}},
		{name: "sync.RWMutex", g: 2, op: mm},
	}, progress)
	if err != nil {
		return nil, err
	}
	rs[1].Note = "2 goroutines of one process: it cannot span processes"
	return append(out, rs...), nil
}

// lockChildReadMostly is the child's side of the two-process workload.
func lockChildReadMostly(path string) (func(w, i int), func(), error) {
	mem, unmap, err := mapRegion(path)
	if err != nil {
		return nil, nil, err
	}
	l, err := lock.Attach(mem)
	if err != nil {
		unmap()
		return nil, nil, err
	}
	var data guarded
	_, _, m := rwLockOps(l, &data)
	return m, func() { l.Detach(); unmap() }, nil
}
