package dispatch

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"fastcall/wire"
)

// Call is a call number with its encoded parameter segment, as
// wire.Params builds it. Count is the number of parameters in Seg; Submit
// checks both.
type Call struct {
	No    uint16
	Seg   []byte
	Count int
}

// CallOf copies the parameters of p into a Call for number no.
func CallOf(no uint16, p *wire.Params) Call {
	if p == nil {
		return Call{No: no}
	}
	return Call{No: no, Seg: append([]byte(nil), p.Segment()...), Count: p.Count()}
}

// Target is one destination of an operation. A zero Call (No 0) means the
// operation's Call.
type Target struct {
	Addr netip.AddrPort
	Call Call
}

// Op is an operation as Submit takes it. Submit copies what it keeps, so
// the caller may reuse Op afterwards.
type Op struct {
	// Resource names what the operation acts on; it keys the conflict
	// marker. 1 to MaxResource bytes of UTF-8.
	Resource string
	// Kind decides what the operation conflicts with (Conflicts).
	Kind Kind
	// Call is sent to every target that has no call of its own.
	Call Call
	// Targets receive one call each, in parallel.
	Targets []Target
	// Deadline bounds the whole operation from Submit; every call
	// carries what is left of it. 0 means Config.DefaultDeadline.
	Deadline time.Duration
}

// TargetStatus is the outcome of one target.
type TargetStatus struct {
	Addr netip.AddrPort
	// Done is false while the call is queued or in flight.
	Done bool
	// Errno is the outcome once Done: OK, the target's error number,
	// ETIMEDOUT (no reply by the deadline, or never sent before it),
	// ENODEAD (the engine knows the target dead), ECLOSED (the
	// dispatcher closed), or a local error of the send (EMSGSIZE).
	Errno wire.Errno
	// Elapsed is from Submit to the outcome.
	Elapsed time.Duration
}

// Status is a snapshot of an operation.
type Status struct {
	ID       uint64
	Resource string
	Kind     Kind
	State    State
	Targets  int // targets in the operation
	Done     int // targets with an outcome
	Failed   int // targets whose outcome is not OK
	// Elapsed is from Submit to the end (or to the snapshot while not done).
	Elapsed time.Duration
	// Outcomes has one entry per target, in the order of Op.Targets
	// (from the requested cursor when read with StatusRemote pages).
	Outcomes []TargetStatus
}

// outcome is one target's slot in an operation.
type outcome struct {
	done    bool
	errno   wire.Errno
	elapsed time.Duration
}

// operation is an accepted Op. Fields above mu are set before the
// operation is published and never change.
type operation struct {
	id       uint64
	resource string
	kind     Kind
	targets  []netip.AddrPort
	calls    []Call // per target, resolved (segments shared with the op's call)
	start    time.Time
	deadline time.Time
	ctx      context.Context // carries the deadline to rfc Go
	cancel   context.CancelFunc
	holder   holder
	done     chan struct{} // closed when the state becomes StateDone

	mu struct {
		sync.Mutex
		state     State
		outcomes  []outcome
		finished  int
		failed    int
		remaining int // targets without an outcome
		ended     time.Time
		// inFlight: Close ended a call of the operation that was sent
		// and not answered; it may still run at its target, so the
		// marker is left to its expiry instead of released.
		inFlight bool
	}
}

// markRunning moves a pending operation to running.
func (op *operation) markRunning() {
	op.mu.Lock()
	if op.mu.state == StatePending {
		op.mu.state = StateRunning
	}
	op.mu.Unlock()
}

// finish records the outcome of target i. It returns true for the call
// that recorded the last outcome; a second outcome for one target is
// ignored.
func (op *operation) finish(i int, e wire.Errno, now time.Time) bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	o := &op.mu.outcomes[i]
	if o.done {
		return false
	}
	o.done, o.errno, o.elapsed = true, e, now.Sub(op.start)
	op.mu.finished++
	if e != wire.OK {
		op.mu.failed++
	}
	op.mu.remaining--
	if op.mu.state == StatePending {
		op.mu.state = StateRunning
	}
	return op.mu.remaining == 0
}

// abandonInFlight records that Close ended a call of the operation while
// it was in flight.
func (op *operation) abandonInFlight() {
	op.mu.Lock()
	op.mu.inFlight = true
	op.mu.Unlock()
}

// callsMayRun reports whether a call of the operation that Close ended
// in flight may still run at its target.
func (op *operation) callsMayRun() bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.mu.inFlight
}

// end marks the operation done (after its marker was released, or left
// to its expiry when a call may still run: releaseOp). retire
// runs between the state change and the wake-up of the waiters, so that a
// waiter that returns sees the retention bounds already applied.
func (op *operation) end(now time.Time, retire func(*operation)) {
	op.mu.Lock()
	op.mu.state = StateDone
	op.mu.ended = now
	op.mu.Unlock()
	retire(op)
	op.cancel()
	close(op.done)
}

// status returns a snapshot with the outcomes from target index from, at
// most max of them (max < 0: all).
func (op *operation) status(from, max int) Status {
	op.mu.Lock()
	defer op.mu.Unlock()
	st := Status{ID: op.id, Resource: op.resource, Kind: op.kind, State: op.mu.state,
		Targets: len(op.targets), Done: op.mu.finished, Failed: op.mu.failed}
	if op.mu.state == StateDone {
		st.Elapsed = op.mu.ended.Sub(op.start)
	} else {
		st.Elapsed = time.Since(op.start)
	}
	if from < 0 || from > len(op.targets) {
		from = len(op.targets)
	}
	n := len(op.targets) - from
	if max >= 0 && n > max {
		n = max
	}
	st.Outcomes = make([]TargetStatus, n)
	for i := range st.Outcomes {
		o := &op.mu.outcomes[from+i]
		st.Outcomes[i] = TargetStatus{Addr: op.targets[from+i], Done: o.done, Errno: o.errno, Elapsed: o.elapsed}
	}
	return st
}
