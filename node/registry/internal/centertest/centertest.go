// Package centertest starts real centers for the tests and examples of
// the packages that talk to them (client, agent, sdk); the center's own
// tests start theirs with their own timers.
package centertest

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"fastcall/node/registry/center"
	"fastcall/node/registry/internal/regtest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// Config is a center's default configuration for dir, logging nothing.
func Config(dir string) center.Config {
	cfg := center.DefaultConfig(dir)
	cfg.Logger = rfctest.Quiet
	return cfg
}

// StartPair starts two centers with Config that are each other's peer
// and waits until both serve (regtest.StartPair).
func StartPair(t testing.TB) *regtest.Pair[*center.Center] {
	t.Helper()
	return regtest.StartPair(t, func(i int, ep *rfc.Endpoint, dir string, peer netip.AddrPort) (*center.Center, error) {
		cfg := Config(dir)
		cfg.Index, cfg.Peer = uint8(i), peer
		return center.StartCenter(ep, cfg)
	})
}

// Single is one center on its own loopback endpoint, with its data in a
// temporary directory: what the examples of client and sdk talk to (a
// cluster runs two centers under rfcd).
type Single struct {
	*center.Center
	ep  *rfc.Endpoint
	dir string
}

// StartSingle starts a center with Config and FsyncNever as node, its data
// in a new temporary directory. It is for examples, which have no
// testing.TB: it panics if the center cannot start, as
// httptest.NewServer does. Close stops the center, closes the endpoint and
// removes the directory.
func StartSingle(node uint32) *Single {
	dir, err := os.MkdirTemp("", "centertest")
	if err != nil {
		panic(err)
	}
	s := &Single{dir: dir}
	s.ep, err = rfc.Listen(rfctest.Config(node))
	if err == nil {
		cfg := Config(filepath.Join(dir, "center"))
		cfg.Fsync = center.FsyncNever
		s.Center, err = center.StartCenter(s.ep, cfg)
	}
	if err != nil {
		s.Close()
		panic(err)
	}
	return s
}

// Addr returns the center's address.
func (s *Single) Addr() netip.AddrPort { return s.ep.Addr() }

// Close stops the center, closes its endpoint and removes its data.
func (s *Single) Close() error {
	var err error
	if s.Center != nil {
		err = s.Center.Close()
	}
	if s.ep != nil {
		s.ep.Close()
	}
	os.RemoveAll(s.dir)
	return err
}
