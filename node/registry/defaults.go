package registry

import "time"

// DefaultLease is the lease of a registration that asks for none (a
// center's Config.DefaultLease by default); an agent renews its
// registrations every third of it.
const DefaultLease = 10 * time.Second

// MaxTTL bounds the ttl of a key/value write (CallPut): a center answers
// a longer one EINVAL.
const MaxTTL = 365 * 24 * time.Hour
