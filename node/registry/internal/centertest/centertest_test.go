package centertest

import (
	"os"
	"testing"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/regtest"
	"fastcall/wire"
)

// TestStartSingle: the single center answers calls at Addr (a read of an
// absent key is ENOENT), and Close stops it and removes its data.
func TestStartSingle(t *testing.T) {
	s := StartSingle(100)
	cli := regtest.Endpoint(t, 1, "")
	get := func() wire.Errno {
		return regtest.Call(t, cli, s.Addr(), registry.CallGet, func(ps *wire.Params) { ps.String("kv/absent"); ps.Bytes(nil) })
	}
	if e := get(); e != wire.ENOENT {
		s.Close()
		t.Fatalf("get of an absent key: %v, want ENOENT", e)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("data directory left after Close: %v", err)
	}
	if e := get(); e == wire.OK || e == wire.ENOENT {
		t.Fatalf("get after Close: %v", e)
	}
}
