package agent

import (
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/shm"
	"fastcall/wire"
)

// fullMap is a map whose writes fail with ENOSPC, as a full map on a
// full file system does, while full is set.
type fullMap struct {
	*shm.Map
	full atomic.Bool
}

func (m *fullMap) Put(key, val []byte) error {
	if m.full.Load() {
		return wire.ENOSPC
	}
	return m.Map.Put(key, val)
}

func (m *fullMap) Grow(n int64) error {
	if m.full.Load() {
		return wire.ENOSPC
	}
	return m.Map.Grow(n)
}

// TestAgentRetriesMapWrite: a change the agent could not write into its
// map (map full, and it cannot grow) is written once there is room, with
// no resynchronization and no further change of the key.
func TestAgentRetriesMapWrite(t *testing.T) {
	p := centertest.StartPair(t)
	path := t.TempDir() + "/agent.map"
	cfg := DefaultAgentConfig(path, p.Addrs()...)
	cfg.Logger = rfctest.Quiet
	cfg.KeepaliveEvery = 50 * time.Millisecond
	var fm *fullMap
	a, err := startAgent(regtest.Endpoint(t, 9, ""), cfg, func(m *shm.Map) mapWriter {
		fm = &fullMap{Map: m}
		return fm
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !rfctest.WaitFor(5*time.Second, a.Watch().Synced) {
		t.Fatal("agent not synced")
	}
	resyncs := a.Watch().Stats().Resyncs
	fm.full.Store(true)
	ctx := rfctest.Context(t, 5*time.Second)
	if err := a.Register(ctx, "db", "10.0.0.1:5432", nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(2*time.Second, func() bool { return a.MapErrors() > 0 }) {
		t.Fatal("the write into the full map did not fail")
	}
	r := regtest.OpenMap(t, path)
	key := []byte(sdk.ServiceKey("db", 9))
	if _, err := a.Map().Get(key, nil); wire.AsErrno(err) != wire.ENOENT {
		t.Fatalf("key in the full map: %v", err)
	}
	fm.full.Store(false)
	if !rfctest.WaitFor(2*time.Second, func() bool { in, err := r.Lookup("db"); return err == nil && len(in) == 1 }) {
		t.Fatalf("the map did not catch up once there was room (%d map errors)", a.MapErrors())
	}
	if n := a.Watch().Stats().Resyncs; n != resyncs {
		t.Fatalf("%d resynchronizations meanwhile, want none", n-resyncs)
	}
}
