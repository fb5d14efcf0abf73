package bench

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setAffinity sets the CPU set of every thread of process pid (0 for this
// one) to set, and returns that set as it was before, read from the
// process's first thread. Threads that start while it runs inherit the set
// of the thread that starts them, so it goes over the threads until a pass
// finds none it has not set.
func setAffinity(pid int, set *unix.CPUSet) (old unix.CPUSet, err error) {
	if pid == 0 {
		pid = os.Getpid()
	}
	if err := unix.SchedGetaffinity(pid, &old); err != nil {
		return old, err
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	done := map[int]bool{}
	for {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return old, err
		}
		n := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			// A thread that ended since ReadDir is no error.
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return old, err
			}
			done[tid] = true
			n++
		}
		if n == 0 {
			return old, nil
		}
	}
}

// maxCPUs is the count of CPUs a unix.CPUSet holds.
const maxCPUs = 1024

// pinTogether puts every thread of this process and of process pid on one
// CPU, the first this process may run on, and returns what restores both
// processes' sets.
func pinTogether(pid int) (unpin func(), err error) {
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		return nil, err
	}
	var one unix.CPUSet
	for c := 0; c < maxCPUs; c++ {
		if mine.IsSet(c) {
			one.Set(c)
			break
		}
	}
	self, err := setAffinity(0, &one)
	if err != nil {
		return nil, err
	}
	child, err := setAffinity(pid, &one)
	if err != nil {
		setAffinity(0, &self)
		return nil, err
	}
	return func() {
		setAffinity(pid, &child)
		setAffinity(0, &self)
	}, nil
}
