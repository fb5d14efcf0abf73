package shm

import (
	"os"
	"time"

	"fastcall/wire"
)

// DefaultDir is where a bare file name (no '/') is placed.
const DefaultDir = "/dev/shm"

// Options configures Create, Open and Grow. The zero value means the
// defaults of DefaultOptions.
type Options struct {
	// Dir is the directory for a path without '/'; "" means DefaultDir.
	Dir string
	// Mode is the permission of files made by Create, Replace and Grow;
	// 0 means 0600. Group or other write is refused (wire.EINVAL): Open
	// refuses files that others may write.
	Mode os.FileMode
	// Timeout bounds every lock wait (wire.ETIMEDOUT past it); 0 waits as
	// long as needed. A negative one is refused (wire.EINVAL).
	Timeout time.Duration
	// ReadOnly maps the data read-only (the lock page stays writable: taking
	// a read hold writes to it). Put, Delete, Grow and Repair return
	// wire.EINVAL.
	ReadOnly bool
	// IndexSlots is the number of slots per index buffer for Create and
	// Grow, a power of two >= 64; 0 derives one slot per 128 file bytes.
	// The map holds at most 3/4 of IndexSlots keys.
	IndexSlots int
}

// DefaultOptions returns Dir DefaultDir, Mode 0600, no timeout, read-write,
// derived index size.
func DefaultOptions() Options {
	return Options{Dir: DefaultDir, Mode: 0o600}
}

func (o Options) withDefaults() Options {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	return o
}

// check refuses what no Map can be opened with: a negative Timeout,
// which would otherwise wait forever where the lock's own timed calls
// take d <= 0 as "try once".
func (o Options) check() wire.Errno {
	if o.Timeout < 0 {
		return wire.EINVAL
	}
	return wire.OK
}

// resolve returns the file path for name.
func (o Options) resolve(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			return name
		}
	}
	return o.Dir + "/" + name
}
