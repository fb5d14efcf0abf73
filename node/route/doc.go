// Package route is fastcall's federation router and the sub-cluster member
// it routes to. It owns the call numbers 0x0400-0x04FF (wire.CallRouteBase)
// and is specified by docs/ROUTE.md.
//
// A Router runs on an existing rfc.Endpoint. It keeps a mount table (path
// prefix -> sub-cluster, longest prefix wins) read from a MountSource — the
// registry's key/value store in a cluster, MemMounts on a single node or in
// tests — and follows its changes by subscription. For every routed call
// number (a call whose first parameter is a path) it registers a handler
// that resolves the path, forwards the call to the sub-cluster's active
// member as call number+RoutedOffset with the client's context (node id,
// address, call id) as three leading parameters, and returns the member's
// reply to the client under the client's own call id. An active member
// the router itself finds dead (the engine holds it dead, or it misses a
// ping after an attempt timed out) is fenced and replaced by a standby
// that the router activates; a client's deadline never causes a
// failover. A member that answers ENOTACTIVE is skipped.
// After a failure the router sends the member a one-way notice naming the
// client.
//
// Every routed call leaves one audit record in the audit trail of
// package audit (node/route/audit): written by one writer goroutine to
// append-only text files with size-based rotation; a full audit queue
// drops and counts records, it never slows forwarding. Audit records are
// queried by call name over CallAudit, in pages of one datagram each;
// the pages of all clients share one allowance of audit bytes read a
// second (Config.QueryScanRate), and a page that finds it spent is
// answered EBUSY.
//
// A Member serves a small path-keyed namespace (put, get, list, delete) in
// memory; a standby member answers ENOTACTIVE to every namespace call.
//
// Goroutines: New starts two, the audit writer and the failover
// goroutine, and nowhere else. A routed call is forwarded by the reader
// that reads it and answered by the reader that reads the member's reply
// (rfc's deferred replies and GoFunc), so no goroutine waits while a
// member answers; the endpoint's Config.MaxPending bounds the routed
// calls in flight. A call whose attempt failed on a member is handed to
// the failover goroutine over a bounded queue, which pings, fences and
// promotes.
package route
