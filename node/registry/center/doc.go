// Package center is a registry center (docs/REGISTRY.md): the store in
// memory, its append-only log and snapshots on disk (wal.go) with group
// commit (logsync.go), the replication to the other center and
// anti-entropy, the push streams to subscribers (push.go), lease and TTL
// expiry (maint.go) and the handlers of the registry's calls
// (handlers.go). It reaches time only through Clock and its data
// directory only through Disk, so that tests and the simulation can pass
// their own.
package center
