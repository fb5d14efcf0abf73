package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/client"
	"fastcall/rfc/rfctest"
)

// TestRegLsPastTombstones: rfcctl reg ls lists every live key of a prefix
// whose first keys are deleted, more of them than one reg-list page
// examines (registry.ListScan): it follows the pages that hold no entry
// to the live keys after them.
func TestRegLsPastTombstones(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "center.json")
	os.WriteFile(cfg, []byte(`{"insecure": true, "roles": ["center"], "center": {"data_dir": "`+filepath.Join(dir, "data")+`"}}`), 0o600)
	addr := startNode(t, "-config", cfg)
	ccfg := client.DefaultClientConfig(netip.MustParseAddrPort(addr))
	cli, err := client.NewClient(rfctest.Listen(t, 7, nil), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := rfctest.Context(t, 60*time.Second)
	dead := registry.ListScan + 50
	for i := 0; i < dead; i++ {
		k := fmt.Sprintf("t/a%04d", i)
		if _, err := cli.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if err := cli.Delete(ctx, k, 0); err != nil {
			t.Fatal(err)
		}
	}
	const live = 40
	for i := 0; i < live; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("t/b%04d", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	out, code := rfcctl(t, "reg", "-c", addr, "-json", "ls", "t/")
	var es []client.Entry
	if code != 0 || json.Unmarshal([]byte(out), &es) != nil {
		t.Fatalf("rfcctl reg ls: exit %d, output:\n%s", code, out)
	}
	if len(es) != live || es[0].Key != "t/b0000" || es[live-1].Key != fmt.Sprintf("t/b%04d", live-1) {
		t.Fatalf("rfcctl reg ls listed %d entries, want %d live ones", len(es), live)
	}
}
