package client

import (
	"fastcall/node/registry/center"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestWatchTakesReissuedVersion: a watch holds a record that its center
// lost in a crash; the restarted center makes the same version number
// for another record. The watch's resynchronization must take the
// center's record, not keep its own because the version numbers match.
func TestWatchTakesReissuedVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "center")
	ep := regtest.Endpoint(t, 100, "")
	addr := ep.Addr()
	cfg := centertest.Config(dir)
	c, err := center.StartCenter(ep, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wcfg := DefaultClientConfig(addr)
	wcfg.AttemptTimeout = 200 * time.Millisecond
	wcfg.KeepaliveEvery = time.Hour // resynchronizations only when the test asks
	wc, err := NewClient(regtest.Endpoint(t, 9, ""), wcfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	w, err := wc.Watch([]string{sdk.KVPrefix}, func(ch Change) {
		var r sdk.Record
		mu.Lock()
		defer mu.Unlock()
		if ch.Deleted || sdk.ParseRecord(ch.Record, &r) != wire.OK {
			delete(seen, ch.Key)
			return
		}
		seen[ch.Key] = string(r.Body)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	value := func() string {
		mu.Lock()
		defer mu.Unlock()
		return seen["kv/k"]
	}
	cl := newClient(t, regtest.Endpoint(t, 7, ""), addr)
	ctx := rfctest.Context(t, 20*time.Second)
	logPath := filepath.Join(dir, center.LogName)
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "k", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(5*time.Second, func() bool { return value() == "a" }) {
		t.Fatal("the watch did not see the first write")
	}
	c.Close()
	ep.Close()
	if err := os.Truncate(logPath, fi.Size()); err != nil {
		t.Fatal(err)
	}
	c, err = center.StartCenter(regtest.Endpoint(t, 100, addr.String()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := cl.Put(ctx, "k", []byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	resyncs := w.Stats().Resyncs
	w.kickResync()
	if !rfctest.WaitFor(5*time.Second, func() bool { st := w.Stats(); return st.Resyncs > resyncs && st.Synced }) {
		t.Fatal("the watch did not resynchronize")
	}
	if !rfctest.WaitFor(2*time.Second, func() bool { return value() == "b" }) {
		t.Fatalf("the watch keeps %q, the center holds \"b\" under the same version", value())
	}
}
