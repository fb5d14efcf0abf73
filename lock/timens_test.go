//go:build linux

package lock

import (
	"os/exec"
	"testing"

	"fastcall/lock/proctest"
	"fastcall/wire"
)

// enterTimeNS is a python3 program that runs its arguments in a new time
// namespace whose boottime offset is 1000 s and 5 ms: half a clock tick
// past whole ticks (unshare(1) sets whole seconds only).
const enterTimeNS = `import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x80) != 0:
    sys.exit("unshare: errno %d" % ctypes.get_errno())
open("/proc/self/timens_offsets", "w").write("boottime 1000 5000000")
os.execv(sys.argv[1], sys.argv[1:])
`

// A holder in another time namespace (same pid namespace) reads its own
// start time shifted by its namespace's boottime offset; a waiter in the
// first namespace reads it unshifted. The shift must not make the waiter
// take the live holder for a reused pid and reclaim its write hold.
func TestLiveWriterInOtherTimeNamespace(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap []string // command that runs its arguments in the namespace
	}{
		{"whole seconds", []string{"unshare", "--time", "--boottime", "1000", "--"}},
		{"part of a tick", []string{"python3", "-c", enterTimeNS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := exec.LookPath(tc.wrap[0])
			if err != nil {
				t.Skipf("no %s", tc.wrap[0])
			}
			wrap := append([]string{prog}, tc.wrap[1:]...)
			if out, err := exec.Command(prog, append(wrap[1:], "/bin/true")...).CombinedOutput(); err != nil {
				t.Skipf("cannot make a time namespace here: %v %s", err, out)
			}
			mem, l, path := newShared(t)
			cmd := proctest.Command("holdwrite", envFile+"="+path)
			cmd.Args = append(wrap, cmd.Args...)
			cmd.Path = prog
			c := &child{cmd: cmd, done: make(chan struct{})}
			cmd.Stdout, cmd.Stderr = &c.out, &c.out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				c.wait()
			})
			waitWord(t, mem, offDataReady, 1)

			err = l.LockTimeout(4 * LivenessPoll) // several liveness checks
			if got := wire.AsErrno(err); got != wire.ETIMEDOUT {
				if err == nil || got == wire.EOWNERDEAD {
					l.Unlock()
				}
				t.Fatalf("LockTimeout beside a live writer in another time namespace: %v, want ETIMEDOUT (stats %+v)", err, l.Stats())
			}
			word64(mem, offDataStop).Store(1)
			if err := c.wait(); err != nil {
				t.Fatalf("child: %v\n%s", err, c.out.String())
			}
			if s := l.Stats(); s.ReclaimedWriters != 0 || s.StrayUnlocks != 0 || s.OwnerDied {
				t.Fatalf("stats: %+v", s)
			}
		})
	}
}

// Start times compare by the ticks they allow: one tick when read with an
// offset of whole ticks, that tick and the one before otherwise.
func TestSameStart(t *testing.T) {
	u := startUncertain
	for _, tc := range []struct {
		a, b uint64
		want bool
	}{
		{100, 100, true},
		{100, 101, false},
		{100, 99, false},
		{100 | u, 100, true},
		{100 | u, 99, true},
		{100 | u, 101, false},
		{100 | u, 98, false},
		{100 | u, 101 | u, true},
		{100 | u, 102 | u, false},
		{0 | u, 0, true},
	} {
		if got := sameStart(tc.a, tc.b); got != tc.want {
			t.Errorf("sameStart(%#x, %#x) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := sameStart(tc.b, tc.a); got != tc.want {
			t.Errorf("sameStart(%#x, %#x) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestParseBootOffset(t *testing.T) {
	for _, tc := range []struct {
		text string
		ns   int64
		ok   bool
	}{
		{"monotonic           0         0\nboottime            0         0\n", 0, true},
		{"monotonic           7         0\nboottime         1000   5000000\n", 1000e9 + 5e6, true},
		{"boottime           -5         0\n", -5e9, true},
		{"monotonic           0         0\n", 0, false},
		{"boottime x 0\n", 0, false},
		{"", 0, false},
	} {
		ns, ok := parseBootOffset([]byte(tc.text))
		if ns != tc.ns || ok != tc.ok {
			t.Errorf("parseBootOffset(%q) = %d, %v, want %d, %v", tc.text, ns, ok, tc.ns, tc.ok)
		}
	}
}
