package center

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fastcall/node/registry/internal/regtest"
	"fastcall/wire"
)

// TestDamagedFileNamed: a center that refuses to start on a damaged file
// of its data directory (snapshot, epoch, log of an unknown format) says
// which file, with the error number EPROTO; rfcd printed only "EPROTO:
// protocol error", which left the operator to guess among the files.
func TestDamagedFileNamed(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{SnapshotName, "FCRSNP02 not a snapshot"},
		{SnapshotName, ""},
		{epochName, "FCREP"},
		{epochName, ""},
		{LogName, "FCRLOG99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := StartCenter(regtest.Endpoint(t, 100, ""), testCenterConfig(dir, 0, netip.AddrPort{}))
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = StartCenter(regtest.Endpoint(t, 100, ""), testCenterConfig(dir, 0, netip.AddrPort{}))
			if wire.AsErrno(err) != wire.EPROTO || !strings.Contains(err.Error(), path) {
				t.Fatalf("%s holding %q: %v, want EPROTO naming %s", tc.name, tc.body, err, path)
			}
		})
	}
}
