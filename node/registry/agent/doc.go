// Package agent is the registry's node agent (docs/REGISTRY.md): one per
// node, it watches the centers and writes every change into the node's
// shared-memory map, which local processes read with package
// registry/sdk, and it keeps the node's own registrations alive.
package agent
