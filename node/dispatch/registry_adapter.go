package dispatch

import (
	"context"
	"fastcall/node/registry/client"
	"time"
)

// RegistryStore keeps conflict markers in the registry's replicated
// key/value store through a client.Client (which fails over between the
// two centers by itself). Keys are the registry's "kv/" keys; TTLs are
// whole milliseconds, as the registry keeps them.
type RegistryStore struct {
	c *client.Client
}

// NewRegistryStore returns a MarkerStore over c.
func NewRegistryStore(c *client.Client) *RegistryStore { return &RegistryStore{c: c} }

// CAS implements MarkerStore.
func (s *RegistryStore) CAS(ctx context.Context, key string, expectVersion uint64, value []byte, ttl time.Duration) (uint64, error) {
	if ttl > 0 && ttl < time.Millisecond {
		ttl = time.Millisecond // the registry's 0 would mean "no expiry"
	}
	return s.c.CAS(ctx, key, expectVersion, value, ttl)
}

// Get implements MarkerStore.
func (s *RegistryStore) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := s.c.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return e.Value, e.Version, nil
}

// Delete implements MarkerStore.
func (s *RegistryStore) Delete(ctx context.Context, key string, expectVersion uint64) error {
	return s.c.Delete(ctx, key, expectVersion)
}
