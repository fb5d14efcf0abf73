package center

import (
	"strings"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestServiceMetaBound: a registration carrying registry.MaxServiceMeta
// bytes of metadata is accepted (the bound rfcd checks its config
// against is not above what a center takes), and an address past
// registry.MaxAddrLen is refused.
func TestServiceMetaBound(t *testing.T) {
	p := startPair(t, nil)
	owner := regtest.Endpoint(t, 7, "")
	c := newClient(t, owner, p.Addrs()...)
	ctx := rfctest.Context(t, 5*time.Second)
	addr := "10.0.0.1:5432"
	room := registry.MaxServiceMeta(wire.DefaultMaxDatagram, "db", 7, len(addr))
	if _, err := c.Register(ctx, "db", addr, make([]byte, room), time.Second); err != nil {
		t.Fatalf("metadata of %d bytes, the bound: %v", room, err)
	}
	_, err := c.Register(ctx, "db2", strings.Repeat("x", registry.MaxAddrLen+1), nil, time.Second)
	if e := wire.AsErrno(err); e != wire.EMSGSIZE {
		t.Fatalf("address of %d bytes: %v, want EMSGSIZE", registry.MaxAddrLen+1, err)
	}
}
