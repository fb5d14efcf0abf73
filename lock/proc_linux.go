//go:build linux

package lock

// Process identity and liveness. A holder is named by its pid paired with
// its start time (field 22 of /proc/<pid>/stat, clock ticks since boot), so
// that a pid reused by an unrelated process is not taken for the holder.
//
// The kernel shows that start time shifted by the boottime offset of the
// reader's time namespace, so processes of one pid namespace in different
// time namespaces see different start times for the same process. Every
// start time is therefore recorded and compared in the first time
// namespace's ticks: the reader's own offset (/proc/self/timens_offsets)
// is taken off. An offset that is not a whole number of ticks leaves the
// tick uncertain by one (the kernel rounds the shifted time down); such a
// start time carries startUncertain, and two start times match when the
// ticks they allow overlap.

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"fastcall/wire"

	"golang.org/x/sys/unix"
)

// statBufSize bounds the bytes read from /proc/<pid>/stat. The line is about
// 300 bytes; the command name inside it is at most 64.
const statBufSize = 1024

// Fields of /proc/<pid>/stat counted after the closing parenthesis of the
// command name: the first is field 3 (state), field 22 is starttime,
// field 28 startstack.
const (
	statFieldState = 3
	statFieldStart = 22
	statFieldStack = 28
)

// Start times in /proc/<pid>/stat count clock ticks (USER_HZ, 100 per
// second on Linux).
const clockTick = int64(10 * time.Millisecond)

// startUncertain marks a recorded start time read in a time namespace
// whose boottime offset is not a whole number of ticks: the process
// started in the recorded tick or the one before.
const startUncertain = uint64(1) << 63

// self caches this process's identity; it is read once.
var self struct {
	once  sync.Once
	pid   int
	start uint64
	exec  uint64
	err   wire.Errno
}

// bootShift caches this process's time namespace boottime offset: whole
// ticks, and whether a part of a tick remains.
var bootShift struct {
	once  sync.Once
	ticks int64
	frac  bool
}

// ownBootShift returns this process's boottime offset in whole ticks
// (rounded down) and whether a part of a tick remains. Without
// /proc/self/timens_offsets (no time namespaces) the offset is zero.
func ownBootShift() (int64, bool) {
	bootShift.once.Do(func() {
		var buf [statBufSize]byte
		fd, e := unix.Open("/proc/self/timens_offsets", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if e != nil {
			return
		}
		n, e := unix.Read(fd, buf[:])
		unix.Close(fd)
		if e != nil {
			return
		}
		ns, ok := parseBootOffset(buf[:n])
		if !ok {
			return
		}
		q := ns / clockTick
		if ns%clockTick < 0 {
			q-- // round down
		}
		bootShift.ticks, bootShift.frac = q, ns-q*clockTick != 0
	})
	return bootShift.ticks, bootShift.frac
}

// parseBootOffset extracts the boottime offset, in nanoseconds, from the
// text of timens_offsets ("boottime <seconds> <nanoseconds>" on a line).
func parseBootOffset(b []byte) (int64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[0]) != "boottime" {
			continue
		}
		sec, e1 := strconv.ParseInt(string(f[1]), 10, 64)
		nsec, e2 := strconv.ParseInt(string(f[2]), 10, 64)
		if e1 != nil || e2 != nil || sec > 1<<32 || sec < -(1<<32) {
			return 0, false
		}
		return sec*int64(time.Second) + nsec, true
	}
	return 0, false
}

// normalStart turns a start time read here into the first time
// namespace's ticks, marked startUncertain when this namespace's offset
// has a part of a tick.
func normalStart(st uint64) uint64 {
	q, frac := ownBootShift()
	n := uint64(int64(st)-q) &^ startUncertain
	if frac {
		n |= startUncertain
	}
	return n
}

// sameStart reports whether two normalized start times may name the same
// process start: the ticks they allow overlap.
func sameStart(a, b uint64) bool {
	if (a|b)&startUncertain == 0 {
		return a == b
	}
	lo := func(s uint64) int64 {
		if s&startUncertain != 0 {
			return int64(s&^startUncertain) - 1
		}
		return int64(s)
	}
	hi := func(s uint64) int64 { return int64(s &^ startUncertain) }
	return lo(a) <= hi(b) && lo(b) <= hi(a)
}

// selfIdentity returns this process's pid and start time. The result is
// computed once per process.
func selfIdentity() (pid int, start uint64, err wire.Errno) {
	self.once.Do(func() {
		self.pid = unix.Getpid()
		st, e := readStat("/proc/self/stat")
		switch {
		case e != wire.OK:
			self.err = e
		case !st.alive:
			self.err = wire.EPROTO
		case self.pid <= 0 || self.pid > slotPidMask:
			self.err = wire.EINVAL
		default:
			self.start = normalStart(st.start)
			self.exec = st.stack
		}
	})
	return self.pid, self.start, self.err
}

// selfExec returns the identity of this process's program (the start of
// its stack), 0 if it is not known; valid after selfIdentity.
func selfExec() uint64 { return self.exec }

// processLiveness tells whether the process recorded as (pid, start) runs
// the program whose stack starts at exec (execStackMask bits; 0: not
// known). With startKnown false only the pid is checked (the holder died
// or stalled before recording its start time). A zombie counts as dead:
// it can never release anything; so does a process that replaced its
// program with exec since (pid and start time stay, but the start of the
// stack moves): the new program knows nothing of the old one's holds.
// When the answer cannot be found (no /proc access) the result is
// livenessUnknown, which callers treat as alive.
func processLiveness(pid int, start, exec uint64, startKnown bool) liveness {
	if pid <= 0 || pid > slotPidMask {
		return livenessDead
	}
	kerr := unix.Kill(pid, 0)
	if kerr == unix.ESRCH {
		return livenessDead
	}
	st, e := readStat("/proc/" + strconv.Itoa(pid) + "/stat")
	if e == wire.ENOENT {
		if kerr == nil {
			return livenessDead // exited between kill and open
		}
		return livenessUnknown // hidden by hidepid
	}
	if e != wire.OK {
		return livenessUnknown
	}
	if !st.alive {
		return livenessDead
	}
	if startKnown && !sameStart(normalStart(st.start), start) {
		return livenessDead // the pid was reused
	}
	if startKnown && exec != 0 && st.stack != 0 && st.stack&execStackMask != exec {
		return livenessDead // the program was replaced by exec
	}
	return livenessAlive
}

// procStat is what a stat file tells of a process.
type procStat struct {
	start uint64 // start time, clock ticks since boot as this process sees it
	stack uint64 // start of the program's stack: moves with every exec; 0 if not shown
	alive bool   // the state is a running one (not zombie 'Z', not dead 'X')
}

// readStat reads a stat file. A missing file is wire.ENOENT, an
// unparsable one wire.EPROTO.
func readStat(path string) (procStat, wire.Errno) {
	fd, e := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if e != nil {
		if e == unix.ENOENT || e == unix.ESRCH {
			return procStat{}, wire.ENOENT
		}
		return procStat{}, wire.EPROTO
	}
	var buf [statBufSize]byte
	n, e := unix.Read(fd, buf[:])
	unix.Close(fd)
	if e != nil {
		if e == unix.ESRCH {
			return procStat{}, wire.ENOENT
		}
		return procStat{}, wire.EPROTO
	}
	return parseStat(buf[:n])
}

// parseStat extracts the state, the start time and the start of the stack
// from the text of a stat file. The stack (field 28) is 0 when the line
// ends before it or the kernel hides it from this reader.
func parseStat(b []byte) (procStat, wire.Errno) {
	var ps procStat
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	if i < 0 {
		return ps, wire.EPROTO
	}
	field := statFieldState - 1
	var state byte
	started := false
	for i++; i < len(b); {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		if i >= len(b) {
			break
		}
		field++
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\n' {
			j++
		}
		switch field {
		case statFieldState:
			state = b[i]
		case statFieldStart:
			v, ok := parseDecimal(b[i:j])
			if !ok {
				return procStat{}, wire.EPROTO
			}
			ps.start, ps.alive, started = v, state != 'Z' && state != 'X' && state != 'x', true
		case statFieldStack:
			ps.stack, _ = parseDecimal(b[i:j])
			return ps, wire.OK
		}
		i = j
		if i < len(b) && b[i] == '\n' {
			break
		}
	}
	if !started {
		return procStat{}, wire.EPROTO
	}
	return ps, wire.OK
}

// parseDecimal parses an unsigned decimal number of at most 19 digits.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
