// Package rfc is fastcall's call engine. It owns one UDP socket per
// Endpoint and the whole life of a call on both sides: the pending table
// where callers park, retransmission with an adaptive timer, the
// duplicate-request cache that gives non-idempotent calls at-most-once
// execution, peer liveness with fast failure for dead peers, a bounded
// worker pool with EBUSY backpressure, batching with recvmmsg/sendmmsg, and
// statistics. It knows nothing of the services built on it.
//
// Goroutines: an Endpoint starts, in Start (which Listen and
// ListenTransport call; Open and OpenTransport start none, so that calls
// can be registered first) and nowhere else, Config.Readers reader
// goroutines, Config.Workers worker goroutines, one priority worker and
// one timer goroutine. Close stops them all and fails every parked
// caller with ECLOSED. No goroutine is started per packet or per call.
//
// A reader waits on the poller as soon as a batch comes back short, so a
// wake-up costs one recvmmsg. A handler registered with RegisterDeferred
// may reply later through its Deferred, and GoFunc completes a call by
// running a function instead of waking a parked goroutine: together they
// let a node forward calls without holding any goroutine per call.
//
// A caller that is the endpoint's only call in flight parks in the
// network poller on an eventfd (the endpoint's bell, Linux only) instead
// of on a channel, and the goroutine that completes its call writes the
// eventfd. The Go scheduler then runs the caller on the thread that is
// already running, where readying a goroutine directly would wake a
// second thread (bell.go). The caller's context does not change how it
// parks: the call's timer enforces the context's deadline, and the timer
// goroutine notices a cancellation within MinRTO (a tick on a Transport;
// cancel.go), so a call with a deadline or cancellable context costs no
// goroutine, wake-up or allocation more than one with context.Background.
//
// The timer goroutine of a socket endpoint sleeps in the poller on a
// timerfd (the endpoint's alarm, Linux only), not on a runtime timer: with
// a runtime timer a few milliseconds out, every time the process blocks in
// the poller the kernel arms and cancels a timer for the poll's timeout,
// twice per sequential call (alarm.go). It sleeps until the timer of the
// first call still waiting, at least one engine tick (docs/PROTOCOL.md);
// the timers of calls that finished are dropped, not waited for. While
// calls are being made (within two MinRTOs of a wake-up that found two or
// more new timers since the one before) it sleeps at most MinRTO, so that
// a call's own timer, due MinRTO or more after it starts, never has to
// wake it; a wake-up that finds one new timer, as a heartbeat member's
// one call every few hundred milliseconds leaves, starts no such linger
// (timerHeap.linger). A timer due less than a tick before its next
// wake-up waits for it, one due earlier arms the alarm for its own time
// (the goroutine does not wake at once to do so), and a timer pushed
// while it is awake only marks the alarm (timerHeap.push). When such arms
// come at least MinRTO apart, the call's reply sets the alarm back to the
// goroutine's own wake-up if no call still waiting needs it earlier, so
// that an answered call costs the goroutine no wake-up
// (timerHeap.settled).
//
// OpenTransport and ListenTransport put an endpoint on a Transport instead
// of a socket: the simulated network of rfc/simnet, where every datagram
// goes through Recv and Send, the bell stays off and the timer goroutine
// sleeps on a runtime timer (docs/SIMULATION.md).
//
// The datagram format is docs/PROTOCOL.md; the call life cycle is described
// in its "Call life cycle" section.
package rfc
