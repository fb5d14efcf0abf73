// Package rfc is fastcall's call engine. It owns one UDP socket per
// Endpoint and the whole life of a call on both sides: the pending table
// where callers park, retransmission with an adaptive timer, the
// duplicate-request cache that gives non-idempotent calls at-most-once
// execution, peer liveness with fast failure for dead peers, a bounded
// worker pool with EBUSY backpressure, batching with recvmmsg/sendmmsg, and
// statistics. It knows nothing of the services built on it.
//
// Goroutines: an Endpoint starts, in Listen and nowhere else, Config.Readers
// reader goroutines, Config.Workers worker goroutines, one priority worker
// and one timer goroutine. Close stops them all and fails every parked
// caller with ECLOSED. No goroutine is started per packet or per call.
//
// A reader waits on the poller as soon as a batch comes back short, so a
// wake-up costs one recvmmsg. A handler registered with RegisterDeferred
// may reply later through its Deferred, and GoFunc completes a call by
// running a function instead of waking a parked goroutine: together they
// let a node forward calls without holding any goroutine per call.
//
// The datagram format is docs/PROTOCOL.md; the call life cycle is described
// in its "Call life cycle" section.
package rfc
