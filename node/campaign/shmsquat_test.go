package campaign

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fastcall/node/registry/sdk"
	"fastcall/shm"
	"fastcall/shm/fileowner/fileownertest"
	"fastcall/wire"
)

// TestShmSquat: before an agent rfcd starts, another user has made its
// map file: a valid map holding a forged instance of a registered service
// and of a service nobody registered. The agent replaces the file (new
// inode, this process's owner) instead of adopting it, and lookups through
// the local SDK return what the center holds and nothing of the forgery.
func TestShmSquat(t *testing.T) {
	fileownertest.RequireRoot(t)
	key := keyFile(t)
	center := startCenter(t, 40, key)

	path := filepath.Join(t.TempDir(), "agent.map")
	m, err := shm.Create(path, 1<<20, shm.Options{Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	forged := 0
	for _, name := range []string{"db", "pay"} {
		rec := sdk.AppendRecord(nil, &sdk.Record{Kind: sdk.KindService, Node: 7, Version: 1 << 62,
			LeaseMs: 1 << 30, Addr: []byte("6.6.6.6:5432"), Owner: []byte("127.0.0.1:1")})
		if err := m.Put([]byte(sdk.ServiceKey(name, 7)), rec); err != nil {
			t.Fatal(err)
		}
		forged++
	}
	m.Close()
	fileownertest.Plant(t, path)
	var planted syscall.Stat_t
	if err := syscall.Stat(path, &planted); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	startConfig(t, "agent.json", fmt.Sprintf(`{"addr": "127.0.0.1:0", "node": 41, "key_file": %q,
		"log_level": "error", "roles": ["agent"], "registry": {"centers": [%q], "shm_file": %q,
		"services": [{"name": "db", "addr": "10.0.0.1:5432"}], "lease": "10s"}}`, key, center.addr.String(), path))

	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Ino == planted.Ino || st.Uid != uint32(os.Geteuid()) {
		t.Fatalf("map file after the agent started: inode %d (planted %d), uid %d", st.Ino, planted.Ino, st.Uid)
	}
	in, err := waitInstance(t, path, "db", "10.0.0.1:5432", 10*time.Second)
	if err != nil {
		t.Fatalf("the agent's map: %v (the one registered instance)", err)
	}
	served := time.Since(began)
	r, err := sdk.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if pay, err := r.Lookup("pay"); err != wire.ENOENT {
		t.Fatalf("lookup of pay, which nobody registered: %+v %v, want ENOENT", pay, err)
	}
	record(t, row{
		Fault:   "squatted shm map file",
		Params:  fmt.Sprintf("before a keyed agent rfcd starts, uid %d owns a valid map at its shm_file holding %d forged instances (of the service the agent registers, and of one nobody registers)", fileownertest.HostileUID, forged),
		Load:    "one agent start, one registration at the center",
		Checked: "the agent replaces the file (new inode, owned by the agent's uid) instead of adopting it; SDK lookups return only the center's instance; the forged-only service is ENOENT",
		Result: fmt.Sprintf("pass: inode %d → %d, uid %d → %d; lookup of db: 1 instance at %s, %d ms after the agent started; pay: ENOENT",
			planted.Ino, st.Ino, planted.Uid, st.Uid, in[0].Addr, served.Milliseconds()),
	})
}
