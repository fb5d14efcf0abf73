package bench

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// cpusOf returns the CPU sets of the threads of process pid, with the
// count of threads on each.
func cpusOf(t *testing.T, pid int) map[unix.CPUSet]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[unix.CPUSet]int{}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		var s unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &s); err != nil {
			continue // the thread ended
		}
		sets[s]++
	}
	return sets
}

// TestChildRoundsPinned: a one-caller round of a system whose server runs
// in a child process runs with every thread of this process and of the
// child on one and the same CPU, and ends with both processes' CPU sets
// as they were; a round of 32 callers leaves them alone.
func TestChildRoundsPinned(t *testing.T) {
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	for _, s := range []System{&rawUDP{child: true}, &fastcallSys{child: true}} {
		t.Run(s.Name(), func(t *testing.T) {
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			var pid int
			switch v := s.(type) {
			case *rawUDP:
				pid = v.pid
			case *fastcallSys:
				pid = v.pid
			}
			// same: every thread on the CPUs this test started with.
			same := func(got map[unix.CPUSet]int) bool { return len(got) == 1 && got[before] > 0 }
			if got := cpusOf(t, pid); !same(got) {
				t.Fatalf("child's sets before a round: %v", got)
			}
			call, done, err := s.Client(1, 64)
			if err != nil {
				t.Fatal(err)
			}
			if !call(0) {
				t.Error("call failed")
			}
			mine, child := cpusOf(t, os.Getpid()), cpusOf(t, pid)
			for set := range mine {
				if set.Count() != 1 || len(mine) != 1 || len(child) != 1 || child[set] == 0 {
					t.Errorf("one caller: this process's threads on %v, the child's on %v, want all on one CPU", mine, child)
				}
			}
			done()
			if got := cpusOf(t, os.Getpid()); !same(got) {
				t.Errorf("this process's sets after the round: %v, want %v", got, before)
			}
			if got := cpusOf(t, pid); !same(got) {
				t.Errorf("child's sets after the round: %v, want %v", got, before)
			}
			call, done, err = s.Client(32, 64)
			if err != nil {
				t.Fatal(err)
			}
			if !call(0) {
				t.Error("call failed")
			}
			if got := cpusOf(t, os.Getpid()); !same(got) {
				t.Errorf("32 callers: this process's sets %v, want %v", got, before)
			}
			done()
		})
	}
}
