package dispatch

import (
	"context"
	"sync"
	"time"

	"fastcall/wire"
)

// MemStore is an in-memory MarkerStore with TTLs, for a single node and
// for tests. Expired entries are treated as absent at once and removed
// lazily (on access, and by a sweep when the store is full); it starts no
// goroutine. Versions come from one store-wide counter, so a key deleted
// and created again never reuses a version. Safe for concurrent use.
type MemStore struct {
	max int
	mu  struct {
		sync.Mutex
		m   map[string]memEntry
		ver uint64
	}
}

type memEntry struct {
	value   []byte
	version uint64
	expires time.Time // zero: never
}

// DefaultMemStoreKeys is the bound NewMemStore(0) uses.
const DefaultMemStoreKeys = 65536

// NewMemStore returns an empty store holding at most maxKeys keys
// (0: DefaultMemStoreKeys); a CAS creating a key past it is ENOSPC.
func NewMemStore(maxKeys int) *MemStore {
	if maxKeys <= 0 {
		maxKeys = DefaultMemStoreKeys
	}
	s := &MemStore{max: maxKeys}
	s.mu.m = make(map[string]memEntry)
	return s
}

// liveLocked returns the entry of key if present and not expired,
// removing it if expired.
func (s *MemStore) liveLocked(key string, now time.Time) (memEntry, bool) {
	e, ok := s.mu.m[key]
	if ok && !e.expires.IsZero() && !now.Before(e.expires) {
		delete(s.mu.m, key)
		return memEntry{}, false
	}
	return e, ok
}

// CAS implements MarkerStore.
func (s *MemStore) CAS(ctx context.Context, key string, expectVersion uint64, value []byte, ttl time.Duration) (uint64, error) {
	if ttl < 0 {
		return 0, wire.EINVAL
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key, now)
	switch {
	case expectVersion == 0 && ok:
		return 0, wire.ECONFLICT
	case expectVersion != 0 && (!ok || e.version != expectVersion):
		return 0, wire.ECONFLICT
	}
	if !ok && len(s.mu.m) >= s.max {
		for k := range s.mu.m {
			s.liveLocked(k, now)
		}
		if len(s.mu.m) >= s.max {
			return 0, wire.ENOSPC
		}
	}
	s.mu.ver++
	ne := memEntry{value: append([]byte(nil), value...), version: s.mu.ver}
	if ttl > 0 {
		ne.expires = now.Add(ttl)
	}
	s.mu.m[key] = ne
	return ne.version, nil
}

// Get implements MarkerStore.
func (s *MemStore) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key, time.Now())
	if !ok {
		return nil, 0, wire.ENOENT
	}
	return append([]byte(nil), e.value...), e.version, nil
}

// Delete implements MarkerStore.
func (s *MemStore) Delete(ctx context.Context, key string, expectVersion uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key, time.Now())
	if !ok {
		return wire.ENOENT
	}
	if expectVersion != 0 && e.version != expectVersion {
		return wire.ECONFLICT
	}
	delete(s.mu.m, key)
	return nil
}

// Len returns the number of keys held, expired ones not yet removed
// included.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.m)
}
