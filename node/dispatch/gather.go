package dispatch

import (
	"time"

	"fastcall/wire"
)

// gatherLoop is the gatherer goroutine: it owns every call in flight,
// records each outcome as its call completes and releases its slot. It
// parks on the oldest call's completion and on new calls, and looks at
// all of them every PollInterval, so an outcome is recorded at most one
// PollInterval after the engine completed the call. The engine completes
// every call by its deadline (the operation's), so nothing waits longer.
// The in-flight list is bounded by the endpoint's MaxPending.
func (d *Dispatcher) gatherLoop() {
	defer d.gatherWG.Done()
	fl := make([]inflight, 0, 256)
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		if len(fl) == 0 {
			select {
			case it := <-d.gatherQ:
				fl = append(fl, it)
			case <-d.gatherStop:
				d.abandon(fl)
				return
			}
		}
	drain:
		for {
			select {
			case it := <-d.gatherQ:
				fl = append(fl, it)
			default:
				break drain
			}
		}
		j := 0
		for _, it := range fl {
			select {
			case <-it.p.Done():
				d.complete(it)
			default:
				fl[j] = it
				j++
			}
		}
		clear(fl[j:])
		fl = fl[:j]
		if len(fl) == 0 {
			continue
		}
		tm.Reset(d.cfg.PollInterval)
		select {
		case <-fl[0].p.Done():
			d.complete(fl[0])
			n := copy(fl, fl[1:])
			fl[n] = inflight{}
			fl = fl[:n]
		case it := <-d.gatherQ:
			fl = append(fl, it)
		case <-tm.C:
		case <-d.gatherStop:
			d.abandon(fl)
			return
		}
		if !tm.Stop() {
			select {
			case <-tm.C:
			default:
			}
		}
	}
}

// complete records the outcome of a completed call and releases it.
func (d *Dispatcher) complete(it inflight) {
	e := wire.AsErrno(it.p.Err())
	it.p.Release()
	d.finish(it.op, it.i, e, time.Now())
}

// abandon ends the calls in flight and those still on the way with
// ECLOSED (the senders have stopped). A call already answered keeps its
// outcome; one not answered may still run at its target, so its
// operation's marker is not released (releaseOp).
func (d *Dispatcher) abandon(fl []inflight) {
	for {
		select {
		case it := <-d.gatherQ:
			fl = append(fl, it)
			continue
		default:
		}
		break
	}
	now := time.Now()
	for _, it := range fl {
		select {
		case <-it.p.Done():
			d.complete(it)
			continue
		default:
		}
		it.op.abandonInFlight()
		it.p.Release()
		d.finish(it.op, it.i, wire.ECLOSED, now)
	}
}
