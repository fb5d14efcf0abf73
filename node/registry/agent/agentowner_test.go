package agent

import (
	"os"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/shm"
)

// A valid map file that another user made at the map's path before the
// agent started is not adopted: the agent renames a map of its own over
// it, and the record that user wrote is not served.
func TestAgentReplacesForeignMap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
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
	if err := os.Chown(path, regtest.HostileUID, regtest.HostileUID); err != nil {
		t.Fatal(err)
	}
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
