package agent

import (
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/shm"
	"fastcall/shm/fileowner/fileownertest"
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

// A valid map file that another user made at the map's path before the
// agent started is not adopted: the agent renames a map of its own over
// it, and the record that user wrote is not served.
func TestAgentReplacesForeignMap(t *testing.T) {
	fileownertest.RequireRoot(t)
	p := centertest.StartPair(t)
	path := t.TempDir() + "/agent.map"
	m, err := shm.Create(path, 1<<20, shm.Options{Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	forged := sdk.AppendRecord(nil, &sdk.Record{Kind: sdk.KindService, Node: 7, Version: 1 << 62,
		LeaseMs: 1 << 30, Addr: []byte("6.6.6.6:5432"), Owner: []byte("127.0.0.1:1")})
	if err := m.Put([]byte(sdk.ServiceKey("db", 7)), forged); err != nil {
		t.Fatal(err)
	}
	m.Close()
	fileownertest.Plant(t, path)
	var planted syscall.Stat_t
	if err := syscall.Stat(path, &planted); err != nil {
		t.Fatal(err)
	}

	ep := regtest.Endpoint(t, 9, "")
	cfg := DefaultAgentConfig(path, p.Addrs()...)
	cfg.Logger = rfctest.Quiet
	a, err := StartAgent(ep, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Ino == planted.Ino || st.Uid != 0 || st.Mode&0o777 != 0o644 {
		t.Fatalf("map file: inode %d (planted %d), uid %d, mode %o", st.Ino, planted.Ino, st.Uid, st.Mode&0o777)
	}
	if err := a.Register(rfctest.Context(t, 5*time.Second), "db", "10.0.0.1:5432", nil, time.Second); err != nil {
		t.Fatal(err)
	}
	r := regtest.OpenMap(t, path)
	if !rfctest.WaitFor(2*time.Second, func() bool { in, err := r.Lookup("db"); return err == nil && len(in) == 1 }) {
		in, err := r.Lookup("db")
		t.Fatalf("lookup of db: %+v %v, want the one registered instance", in, err)
	}
	in, _ := r.Lookup("db")
	if in[0].Addr != "10.0.0.1:5432" {
		t.Fatalf("db served at %s", in[0].Addr)
	}
}

// TestCloseConcurrent: several goroutines closing one agent at once (a
// node's shutdown path and a signal handler, say) close it once; none
// panics on a second close of its channels.
func TestCloseConcurrent(t *testing.T) {
	p := centertest.StartPair(t)
	cfg := DefaultAgentConfig(t.TempDir()+"/agent.map", p.Addrs()...)
	cfg.Logger = rfctest.Quiet
	for round := 0; round < 20; round++ {
		a, err := StartAgent(regtest.Endpoint(t, uint32(10+round), ""), cfg)
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a.Close()
			}()
		}
		close(start)
		wg.Wait()
	}
}
