package bench

import (
	"encoding/binary"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuOfProcess returns the CPU time (user + system) this process has
// used so far, from getrusage(RUSAGE_SELF): every goroutine and the
// runtime's own threads, not one goroutine's.
func cpuOfProcess() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the first three fields of /proc/loadavg ("" where
// there is none): the machine's load while a case runs.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// raiseFileLimit raises the soft limit of open files to at least want
// (no further than the hard limit) and returns the soft limit in force.
func raiseFileLimit(want uint64) uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	if lim.Cur < want {
		lim.Cur = min(want, lim.Max)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}

// udpDrops sums the drops the kernel counted (a full receive buffer,
// mostly) on the UDP sockets of this network namespace whose local
// address match accepts, from /proc/net/udp; 0 where there is none.
func udpDrops(match func(netip.AddrPort) bool) uint64 {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	var sum uint64
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		ipPort := strings.Split(f[1], ":")
		if len(ipPort) != 2 {
			continue
		}
		ip, err1 := strconv.ParseUint(ipPort[0], 16, 32)
		port, err2 := strconv.ParseUint(ipPort[1], 16, 16)
		drops, err3 := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		// The address is printed as the host's 32-bit word: little
		// endian on the machines this runs on.
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], uint32(ip))
		if match(netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port))) {
			sum += drops
		}
	}
	return sum
}
