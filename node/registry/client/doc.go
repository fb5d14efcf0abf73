// Package client is the registry's client (docs/REGISTRY.md): key/value
// and service calls to the two centers with failover and backoff, and
// Watch, which follows prefixes through a center's push stream and
// resynchronizes on a gap, an unknown stream or a silent center.
package client
