// Package registry is fastcall's service registry: two centers that back
// each other up, services registered with leases, a small versioned
// key/value store with compare-and-set and TTL, pushed changes to the
// nodes that subscribed, and on every node an agent that writes what it
// receives into a shared-memory map (package shm) where local processes
// read it with package registry/sdk. It owns the call numbers
// 0x0200-0x02FF (wire.CallRegistryBase) and is specified by
// docs/REGISTRY.md.
//
// The roles are packages: center (StartCenter), client (NewClient, with
// Watch) and agent (StartAgent); sdk reads the agent's map. This package
// holds what they share: the call numbers and their parameter schemas,
// the size bounds, the wire formats of a list page (list.go), of a
// write's operation (op.go) and of a pushed change (change.go), and the
// identifiers (IDSource).
//
// Centers (center.StartCenter): each holds the whole store in memory and
// in an append-only, checksummed log with snapshots in its data
// directory. A write accepted by either center is replicated to the
// other before the client gets success, while both are alive; when the
// engine declares the other center dead (the heartbeat service calls MarkDead) the survivor
// goes on alone, and when the other comes back each pulls from the other
// page by page (anti-entropy) and versions decide. Instances of a node
// declared dead are removed, as are those whose lease ran out; the
// removals are pushed like any other change.
//
// Clients (client.NewClient): KV operations (Get, Put, CAS, Delete, List),
// service operations (Register, Deregister, Renew, Lookup) and Watch,
// with failover between the two centers.
//
// Agents (agent.StartAgent): one per node, on the node's endpoint.
//
// Goroutines: StartCenter starts a maintenance loop (expiry, dead nodes,
// push retries, snapshots), a log syncer (the fsyncs nobody blocks on),
// an anti-entropy loop and Config.Pushers push loops; Client.Watch
// starts one; StartAgent starts one besides its Watch's. Close stops
// each. No goroutine is started per call or per push.
package registry
