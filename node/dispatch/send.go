package dispatch

import (
	"context"
	"time"

	"fastcall/rfc"

	"fastcall/wire"
)

// inflight is one call sent and not yet answered.
type inflight struct {
	op *operation
	i  int
	p  *rfc.Pending
}

// sendLoop is a sender goroutine: it takes batches of calls from the send
// queue and sends each with Endpoint.Go, handing the pending calls to the
// gatherer without waiting for any reply.
func (d *Dispatcher) sendLoop() {
	defer d.sendWG.Done()
	var ps wire.Params
	buf := make([]byte, d.ep.Config().MaxDatagram-wire.HeaderSize)
	for {
		// Close ends what is still queued with ECLOSED, unsent: it
		// releases the markers at once, so a call sent after it would
		// run at its target with the resource unlocked.
		if d.closing() {
			return
		}
		c, ok := d.queue.take(d.cfg.Batch)
		if !ok {
			select {
			case <-d.queue.wake:
				continue
			case <-d.done:
				return
			}
		}
		c.op.markRunning()
		for i := c.from; i < c.to; i++ {
			if d.closing() || !d.sendOne(c.op, i, &ps, buf) {
				// Closing: the rest of the chunk ends with ECLOSED.
				now := time.Now()
				for j := i; j < c.to; j++ {
					d.finish(c.op, j, wire.ECLOSED, now)
				}
				return
			}
		}
	}
}

// closing reports whether Close has begun.
func (d *Dispatcher) closing() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// sendOne sends target i of op, or records its outcome when it cannot be
// sent: ETIMEDOUT past the deadline, ENODEAD for a dead target, or the
// engine's local error. When the endpoint has no free call slot (EBUSY)
// it waits for one, with a growing backoff, until the deadline: an
// accepted call is never dropped. It returns false only when the
// dispatcher is closing and the call was not sent.
func (d *Dispatcher) sendOne(op *operation, i int, ps *wire.Params, buf []byte) bool {
	call := &op.calls[i]
	backoff := rfc.Backoff{Min: sendBusyBackoff, Max: sendBusyBackoffMax}
	for {
		now := time.Now()
		if !now.Before(op.deadline) {
			d.finish(op, i, wire.ETIMEDOUT, now)
			return true
		}
		ps.Reset(buf)
		ps.AppendSegment(call.Seg, call.Count)
		if e := ps.Err(); e != wire.OK {
			d.finish(op, i, e, now)
			return true
		}
		p, err := d.ep.Go(op.ctx, op.targets[i], call.No, ps)
		if err == nil {
			d.stats.sent.Add(1)
			d.gatherQ <- inflight{op: op, i: i, p: p} // never blocks: at most MaxPending calls hold a slot
			return true
		}
		e := wire.AsErrno(err)
		if e != wire.EBUSY {
			d.finish(op, i, e, time.Now())
			return true
		}
		d.stats.sendBusy.Add(1)
		if !backoff.Wait(context.Background(), d.done) {
			return false
		}
	}
}
