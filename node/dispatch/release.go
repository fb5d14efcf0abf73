package dispatch

import (
	"context"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// releaseLoop is the releaser goroutine: it removes each finished
// operation from its resource's marker, then marks the operation done.
// Releases are sequential; each try is bounded by MarkerTimeout and a
// release by releaseTries tries (release), and a marker not released is
// left to its TTL. All of them run under d.relCtx, which Close cancels
// closeReleaseBudget after it began: on Close the releaser drains the
// operations still waiting, then stops, and a store out of reach holds
// Close no longer than the budget.
func (d *Dispatcher) releaseLoop() {
	defer d.relWG.Done()
	for {
		select {
		case op := <-d.releaseQ:
			d.releaseOp(d.relCtx, op)
		case <-d.releaseStop:
			for {
				select {
				case op := <-d.releaseQ:
					d.releaseOp(d.relCtx, op)
				default:
					return
				}
			}
		}
	}
}

// releaseOp releases op's marker and ends op. The marker of an operation
// that Close ended with a call in flight stays to its expiry: the call
// may still run at its target, and a conflicting operation must not
// start beside it (docs/DISPATCH.md, "Expiry").
func (d *Dispatcher) releaseOp(parent context.Context, op *operation) {
	if op.callsMayRun() {
		d.log.Info("dispatch marker left to its expiry: calls in flight at Close may still run", "resource", op.resource, "op", op.id)
	} else {
		d.release(parent, op.resource, op.holder, op.id)
	}
	op.end(time.Now(), d.retire)
}

// release removes me from the marker of resource: every release of the
// dispatcher goes through it. Each try is bounded by MarkerTimeout; a try
// that fails on an error whose outcome is unknown (casUnknown: the store
// was out of reach, busy or failing over) is tried again after a
// backoff, up to releaseTries tries, while parent lasts. A retry is safe:
// release reads the marker first, and a holder already removed is
// success. A release that still fails is counted and logged, and the
// holder lapses at its expiry.
func (d *Dispatcher) release(parent context.Context, resource string, me holder, id uint64) wire.Errno {
	backoff := rfc.Backoff{Min: releaseBackoff, Max: releaseBackoffMax}
	var e wire.Errno
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(parent, d.cfg.MarkerTimeout)
		e = d.markers.release(ctx, resource, me)
		cancel()
		if e == wire.OK || !casUnknown(e) || try == releaseTries || !backoff.Wait(parent, nil) {
			break
		}
	}
	if e != wire.OK {
		d.stats.releaseFailed.Add(1)
		d.log.Warn("dispatch marker not released; left to its TTL", "resource", resource, "op", id, "errno", e.String())
	}
	return e
}
