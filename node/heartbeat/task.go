package heartbeat

import (
	"context"
	"net/netip"
	"sync"

	"fastcall/rfc"
	"fastcall/wire"
)

// Task is a task a Master started on a worker. Its outcome is set once:
// the worker's result, ENODEAD when the worker is lost (ready to be
// reassigned), ECANCELED after Master.Cancel, ECLOSED after Master.Close
// or the worker's Worker.Close, or the error of the start call.
type Task struct {
	ID     uint64
	Worker netip.AddrPort
	Kind   uint64
	done   chan struct{} // closed when the outcome is set

	mu struct {
		sync.Mutex
		inc      uint32 // worker incarnation the task runs under; 0 until the start reply
		mastInc  uint32 // this master's incarnation when it sent the start
		finished bool
		reported bool // the outcome is the worker's result (serveResult)
		err      wire.Errno
		result   []byte
		progress uint64
		total    uint64
	}
}

func newTask(id uint64, worker netip.AddrPort, kind uint64) *Task {
	return &Task{ID: id, Worker: worker, Kind: kind, done: make(chan struct{})}
}

// Done is closed when the task has an outcome.
func (t *Task) Done() <-chan struct{} { return t.done }

// Err returns nil on success, the task's error number, or EAGAIN while
// it runs.
func (t *Task) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.mu.finished:
		return wire.EAGAIN
	case t.mu.err != wire.OK:
		return t.mu.err
	}
	return nil
}

// Result returns the worker's result bytes (nil until finished).
func (t *Task) Result() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.result
}

// Wait parks until the task has an outcome or ctx ends (ETIMEDOUT or
// ECANCELED; the task keeps running).
func (t *Task) Wait(ctx context.Context) ([]byte, error) {
	select {
	case <-t.done:
	case <-ctx.Done():
		return nil, rfc.ContextErrno(ctx.Err())
	}
	return t.Result(), t.Err()
}

// Incarnation returns the worker incarnation the task runs under (0
// before the worker accepted it).
func (t *Task) Incarnation() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.inc
}

// Progress returns the last progress the worker reported.
func (t *Task) Progress() (done, total uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.progress, t.mu.total
}

// pairLoss reports whether ev may end tasks of a master/worker pair:
// the other side declared dead or removed here, or this node declared
// dead by it (see endsTask).
func pairLoss(ev Event) bool {
	return ev.Kind == EventDead || ev.Kind == EventRemoved || ev.Kind == EventDeclaredDeadBy
}

// endsTask is the one rule by which Master and Worker end a task of the
// pair on a loss event ev about the other side: peerInc is the other
// side's incarnation the task was started under (0: not known yet),
// ownInc this node's. A death of the other side at n ends the tasks it
// took part in under n or below; this node declared dead at n by the
// other side ends the tasks this node took part in under n or below (the
// other side has given them up); a removal ends them all. A task started
// under a higher incarnation began after the loss and goes on.
func endsTask(ev Event, peerInc, ownInc uint32) bool {
	switch ev.Kind {
	case EventDead:
		return peerInc <= ev.Incarnation
	case EventDeclaredDeadBy:
		return ownInc <= ev.Incarnation
	}
	return ev.Kind == EventRemoved
}

// startedAs reports whether a worker's report about this task (a
// check, progress or a result) names the start this master made: it
// comes from the task's worker and names the master incarnation the
// task was started under and, once the start reply is in, the worker
// incarnation it runs under. Anything else is about another start of
// the same id: one of an earlier process of this master, or one the
// worker accepted under an incarnation given up on.
func (t *Task) startedAs(from netip.AddrPort, mastInc, inc uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Worker == from && t.mu.mastInc == mastInc && (t.mu.inc == 0 || t.mu.inc == inc)
}

// finish sets the outcome once and reports whether this call set it.
func (t *Task) finish(e wire.Errno, result []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.finished {
		return false
	}
	t.mu.finished = true
	t.mu.err = e
	t.mu.result = result
	close(t.done)
	return true
}
