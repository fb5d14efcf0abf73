//go:build linux

package lock

import (
	"fastcall/wire"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// holdReadExec is the child role "holdreadexec": take a read hold, report
// it, then replace the program with exec, as a process that restarts
// itself does. The new program knows nothing of the hold.
func holdReadExec(l *RWLock, ready *atomic.Uint64) int {
	if err := l.RLock(); err != nil {
		fmt.Fprintln(os.Stderr, "holdreadexec", err)
		return 1
	}
	ready.Store(1)
	sleep, err := exec.LookPath("sleep")
	if err == nil {
		err = syscall.Exec(sleep, []string{"sleep", "60"}, os.Environ())
	}
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 1
}

// A process that replaces its program with exec keeps its pid and start
// time but drops every hold its old program had: nothing in the new one
// will release them. A writer waiting for such a hold must reclaim it as
// a dead process's, not wait for as long as the new program runs.
func TestReadHolderExecs(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep(1)")
	}
	mem, l, path := newShared(t)
	c := startChild(t, "holdreadexec", path)
	waitWord(t, mem, offDataReady, 1)
	exe := "/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/exe"
	waitUntil(t, func() bool {
		p, err := os.Readlink(exe)
		return err == nil && strings.HasSuffix(p, "/sleep")
	}, func() string { return "child never ran sleep(1)\n" + c.out.String() })
	if err := l.LockTimeout(waitDeadline); err != nil {
		t.Fatalf("writer behind the read hold of a program replaced by exec: %v (stats %+v)", err, l.Stats())
	}
	l.Unlock()
	if s := l.Stats(); s.ReclaimedReadHolds != 1 || s.OwnerDied {
		t.Fatalf("stats: %+v", s)
	}
}

// The program word of a slot names its claim's generation: a word left by
// an earlier claim (by a build that does not write it) must not make a
// live holder look replaced. plantHolder claims with generation 1.
func TestExecWordGeneration(t *testing.T) {
	const slot = slotCount - 1
	for _, tc := range []struct {
		name string
		word func(stack uint64) uint64
		want wire.Errno
	}{
		{"this claim, same program", func(s uint64) uint64 { return execWord(1<<slotGenShift, s) }, wire.ETIMEDOUT},
		{"this claim, another program", func(s uint64) uint64 { return execWord(1<<slotGenShift, s+4096) }, wire.OK},
		{"earlier claim, another program", func(s uint64) uint64 { return execWord(7<<slotGenShift, s+4096) }, wire.ETIMEDOUT},
		{"not known", func(s uint64) uint64 { return execWord(1<<slotGenShift, 0) }, wire.ETIMEDOUT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, l, path := newShared(t)
			c := startChild(t, "sleep", path)
			// The start of the stack is read once the child runs: while
			// the kernel is still in execve (the parent's Start has
			// returned by then) stat shows an intermediate value that
			// moves before the program starts.
			waitWord(t, mem, offDataReady, 1)
			var st procStat
			var e wire.Errno
			waitUntil(t, func() bool {
				st, e = readStat("/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/stat")
				return e == wire.OK && st.stack != 0
			}, func() string { return fmt.Sprintf("stat of child: %v %+v", e, st) })
			plantHolder(mem, slot, c.cmd.Process.Pid, st.start, 1, false)
			l.slotExec(slot).Store(tc.word(st.stack))
			err := l.LockTimeout(pollsFor(tc.want))
			if got := wire.AsErrno(err); got != tc.want {
				t.Fatalf("LockTimeout: %v, want %v", err, tc.want)
			}
			if err == nil {
				l.Unlock()
			}
		})
	}
}

// The start of the stack is field 28 of a stat line; a line that ends
// before it, or shows 0 there, leaves it unknown.
func TestParseStatStack(t *testing.T) {
	full := "42 (a b) c)) S 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 77 8192 100 0 1 2 140726874544 0 0\n"
	for _, tc := range []struct {
		line         string
		start, stack uint64
	}{
		{full, 77, 140726874544},
		{"42 (x) S 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 77 8192 100 0\n", 77, 0},
		{"42 (x) S 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 77 8192 100 0 0 0 0 0 0\n", 77, 0},
	} {
		st, e := parseStat([]byte(tc.line))
		if e != wire.OK || st.start != tc.start || st.stack != tc.stack || !st.alive {
			t.Errorf("parseStat(%q) = %+v, %v, want start %d stack %d", tc.line, st, e, tc.start, tc.stack)
		}
	}
}
