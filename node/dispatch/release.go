package dispatch

import (
	"context"
	"time"

	"fastcall/wire"
)

// releaseLoop is the releaser goroutine: it removes each finished
// operation from its resource's marker, then marks the operation done.
// Releases are sequential; each is bounded by MarkerTimeout, and a marker
// not released is left to its TTL. On Close it drains the operations
// still waiting within closeReleaseBudget, then stops.
func (d *Dispatcher) releaseLoop() {
	defer d.relWG.Done()
	for {
		select {
		case op := <-d.releaseQ:
			d.releaseOp(context.Background(), op)
		case <-d.releaseStop:
			ctx, cancel := context.WithTimeout(context.Background(), closeReleaseBudget)
			defer cancel()
			for {
				select {
				case op := <-d.releaseQ:
					d.releaseOp(ctx, op)
				default:
					return
				}
			}
		}
	}
}

// releaseOp releases op's marker and ends op.
func (d *Dispatcher) releaseOp(parent context.Context, op *operation) {
	ctx, cancel := context.WithTimeout(parent, d.cfg.MarkerTimeout)
	e := d.markers.release(ctx, op.resource, op.holder)
	cancel()
	if e != wire.OK {
		d.stats.releaseFailed.Add(1)
		d.log.Warn("dispatch marker not released; left to its TTL", "resource", op.resource, "op", op.id, "errno", e.String())
	}
	op.end(time.Now(), d.retire)
}
