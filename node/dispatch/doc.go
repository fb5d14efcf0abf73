// Package dispatch is fastcall's asynchronous fan-out: one operation on a
// resource is sent as one call to each of many targets, in parallel, and
// the per-target outcomes are gathered by the operation's deadline. It
// owns the call numbers 0x0300-0x03FF (wire.CallDispatchBase) and is
// specified by docs/DISPATCH.md.
//
// Life cycle of an operation (Dispatcher.Submit):
//
//  1. The operation is checked (resource, kind, targets, calls) and room
//     for all its calls is reserved on the send queue; no room: EBUSY.
//  2. A conflict marker for the resource is set in a MarkerStore (the
//     registry's key/value store) with a compare-and-set loop and a TTL
//     that outlives the operation's deadline. A holder of a conflicting
//     kind (see Conflicts) refuses it with ECONFLICT and nothing is sent.
//  3. Submit returns the operation id. The calls wait on the bounded send
//     queue; a fixed set of sender goroutines takes them in batches and
//     sends each with rfc Endpoint.Go, without waiting for replies.
//  4. A gatherer goroutine collects the replies: success, the target's
//     error number, ETIMEDOUT at the deadline, ENODEAD for a target the
//     engine knows dead.
//  5. When every target has an outcome a releaser goroutine removes the
//     operation from the marker, and the operation is done. Its status
//     stays queryable for Config.Retention.
//
// Goroutines: Start starts Config.Senders senders, one gatherer and one
// releaser, and nowhere else; Close stops them. No goroutine is started
// per operation or per call.
package dispatch
