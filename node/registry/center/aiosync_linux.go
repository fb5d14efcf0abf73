package center

import (
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An fsync through Linux AIO, for the log syncer (logFile.fsync). A
// goroutine in a plain fsync holds its P (its share of GOMAXPROCS) for as
// long as the disk takes, and the runtime takes the P back only when
// sysmon next looks, which may be milliseconds later: with the two
// centers of a pair in one process on two cores, two fsyncs left no P to
// read the network, and a push waited for a disk it does not need.
// IOCB_CMD_FSYNC hands the fsync to a kernel worker (Linux 4.18 and
// later); its completion bumps an eventfd, which the goroutine reads
// through the runtime's poller, holding no P meanwhile.
//
// This file is the only one of the package that uses unsafe: the AIO
// system calls take pointers to the control block and the event, which
// live in the aioSync (heap memory, which does not move) and are read or
// written by the kernel only during the system call.

// Linux AIO ABI (include/uapi/linux/aio_abi.h).
const (
	iocbCmdFsync  = 2      // IOCB_CMD_FSYNC
	iocbFlagResfd = 1 << 0 // IOCB_FLAG_RESFD: signal the eventfd aio_resfd on completion
)

// iocb is struct iocb (64 bytes). aio_key and aio_rw_flags swap places on
// big-endian machines; both are 0 here.
type iocb struct {
	data     uint64
	key      uint32
	rwFlags  int32
	opcode   uint16
	reqprio  int16
	fildes   uint32
	buf      uint64
	nbytes   uint64
	offset   int64
	reserved uint64
	flags    uint32
	resfd    uint32
}

// ioEvent is struct io_event (32 bytes).
type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

// The kernel's sizes: a layout that drifted would not compile.
var (
	_ [unsafe.Sizeof(iocb{}) - 64]byte
	_ [64 - unsafe.Sizeof(iocb{})]byte
	_ [unsafe.Sizeof(ioEvent{}) - 32]byte
	_ [32 - unsafe.Sizeof(ioEvent{})]byte
)

// aioSync runs fsyncs through one AIO context, one at a time.
type aioSync struct {
	mu    sync.Mutex // one fsync at a time; guards the fields below
	ctx   uintptr    // aio_context_t
	efd   int        // eventfd, nonblocking
	efile *os.File   // efd, read through the poller
	cb    iocb
	cbp   [1]*iocb
	ev    [1]ioEvent
	cnt   [8]byte
}

// newAIOSync sets up an AIO context and its eventfd; an error means the
// kernel does not offer them and the caller fsyncs directly.
func newAIOSync() (*aioSync, error) {
	a := &aioSync{}
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&a.ctx)), 0); e != 0 {
		return nil, e
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, a.ctx, 0, 0)
		return nil, err
	}
	a.efd = fd
	a.efile = os.NewFile(uintptr(fd), "registry-aio")
	a.cbp[0] = &a.cb
	return a, nil
}

// sync makes f durable. It returns errAIOUnsupported if the kernel does
// not take the AIO fsync of f; the caller then fsyncs directly.
func (a *aioSync) sync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var serr error
	if err := rc.Control(func(fd uintptr) {
		a.cb = iocb{opcode: iocbCmdFsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: uint32(a.efd)}
		if n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&a.cbp[0]))); e != 0 || n != 1 {
			// Not taken (no AIO fsync for this file, or no resources
			// for it now): nothing was started.
			serr = errAIOUnsupported
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	// The kernel holds its own reference to the file until the fsync
	// completes. Its completion is queued before the eventfd is bumped:
	// once the read returns, io_getevents finds it at once.
	if _, err := a.efile.Read(a.cnt[:]); err != nil {
		return err
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, a.ctx, 1, 1, uintptr(unsafe.Pointer(&a.ev[0])), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		if n == 1 {
			break
		}
	}
	if res := a.ev[0].res; res < 0 {
		return unix.Errno(-res)
	}
	return nil
}

// close releases the context and the eventfd.
func (a *aioSync) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	unix.Syscall(unix.SYS_IO_DESTROY, a.ctx, 0, 0)
	a.efile.Close()
}
