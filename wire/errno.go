package wire

// Errno is the one error-number type of fastcall. The same value travels in
// the header's error field and is returned by every Go API as an error.
// Zero is success and is never returned as an error value.
//
// The table is append-only: a number, once assigned, keeps its meaning.
// docs/PROTOCOL.md holds the same table; TestErrnoTable keeps the two equal.
type Errno uint16

const (
	OK         Errno = 0  // success
	ETIMEDOUT  Errno = 1  // no reply before the deadline; or a lock not granted in time
	ENODEAD    Errno = 2  // the peer is declared dead
	ENOCALL    Errno = 3  // unknown call number
	EINVAL     Errno = 4  // parameters do not match the call's schema, or bad argument
	EMSGSIZE   Errno = 5  // datagram would exceed the size limit
	EBUSY      Errno = 6  // queue full; try later
	EFAULT     Errno = 7  // the handler failed (panicked)
	EPERM      Errno = 8  // authentication failed
	ECONFLICT  Errno = 9  // a conflicting operation holds the resource
	ENOENT     Errno = 10 // no such key, service or record
	ENOSPC     Errno = 11 // no space left (table, arena, map)
	EPROTO     Errno = 12 // malformed packet or file
	ECANCELED  Errno = 13 // the caller's context was cancelled
	ECLOSED    Errno = 14 // the endpoint or object was closed
	ENOSYS     Errno = 15 // not supported on this platform
	EOWNERDEAD Errno = 16 // lock taken over from a dead holder: verify and repair
	ESTALE     Errno = 17 // message from an old incarnation, rejected
	ENOTACTIVE Errno = 18 // member is not the active one of its sub-cluster
	EEXIST     Errno = 19 // already exists
	EAGAIN     Errno = 20 // try again (transient, e.g. resynchronizing)

	errnoLast = EAGAIN

	// EUSER is the first handler-defined error number. Numbers from EUSER
	// up to 65535 belong to the services that register calls; the engine
	// passes them through untouched.
	EUSER Errno = 1000
)

var errnoNames = Names{
	OK:         "OK",
	ETIMEDOUT:  "ETIMEDOUT",
	ENODEAD:    "ENODEAD",
	ENOCALL:    "ENOCALL",
	EINVAL:     "EINVAL",
	EMSGSIZE:   "EMSGSIZE",
	EBUSY:      "EBUSY",
	EFAULT:     "EFAULT",
	EPERM:      "EPERM",
	ECONFLICT:  "ECONFLICT",
	ENOENT:     "ENOENT",
	ENOSPC:     "ENOSPC",
	EPROTO:     "EPROTO",
	ECANCELED:  "ECANCELED",
	ECLOSED:    "ECLOSED",
	ENOSYS:     "ENOSYS",
	EOWNERDEAD: "EOWNERDEAD",
	ESTALE:     "ESTALE",
	ENOTACTIVE: "ENOTACTIVE",
	EEXIST:     "EEXIST",
	EAGAIN:     "EAGAIN",
}

var errnoText = [...]string{
	OK:         "success",
	ETIMEDOUT:  "timed out",
	ENODEAD:    "peer is dead",
	ENOCALL:    "unknown call number",
	EINVAL:     "invalid argument",
	EMSGSIZE:   "message too long",
	EBUSY:      "busy",
	EFAULT:     "handler failed",
	EPERM:      "authentication failed",
	ECONFLICT:  "conflicting operation",
	ENOENT:     "not found",
	ENOSPC:     "no space left",
	EPROTO:     "protocol error",
	ECANCELED:  "cancelled",
	ECLOSED:    "closed",
	ENOSYS:     "not supported",
	EOWNERDEAD: "previous owner died",
	ESTALE:     "stale incarnation",
	ENOTACTIVE: "not active",
	EEXIST:     "already exists",
	EAGAIN:     "try again",
}

// String returns the symbolic name, "EUSER+n" for handler-defined numbers,
// and "E?n" for numbers this version does not know.
func (e Errno) String() string {
	if e >= EUSER {
		return "EUSER+" + utoa(uint64(e-EUSER))
	}
	return errnoNames.String(uint64(e), "E?")
}

// Error returns "NAME: text".
func (e Errno) Error() string {
	if e <= errnoLast {
		return errnoNames[e] + ": " + errnoText[e]
	}
	return e.String()
}

// Known reports whether e is in the table of this version or in the
// handler-defined range.
func (e Errno) Known() bool {
	return e <= errnoLast || e >= EUSER
}

// ErrnoByName returns the number for a symbolic name such as "EBUSY".
func ErrnoByName(name string) (Errno, bool) {
	e, ok := errnoNames.Value(name, uint64(OK))
	return Errno(e), ok
}

// AsErrno extracts an Errno from err: nil is OK, an Errno is itself, and
// anything else is EFAULT.
func AsErrno(err error) Errno {
	if err == nil {
		return OK
	}
	if e, ok := err.(Errno); ok {
		return e
	}
	type errnoer interface{ Errno() Errno }
	if x, ok := err.(errnoer); ok {
		return x.Errno()
	}
	return EFAULT
}

// utoa formats v in decimal without fmt or strconv allocations beyond the
// result string.
func utoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
