package route

import (
	"context"
	"testing"
	"time"

	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestRegistryMounts keeps the mount table in a real registry center: a
// table written by an operator's client reaches the router by
// subscription, and a removal too.
func TestRegistryMounts(t *testing.T) {
	cep := newEndpoint(t, 50, 0)
	ccfg := center.DefaultConfig(t.TempDir())
	ccfg.Fsync = center.FsyncNever
	ccfg.Logger = quiet
	center, err := center.StartCenter(cep, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { center.Close() })
	client := func(node uint32) RegistryMounts {
		ep := newEndpoint(t, node, 16)
		c, err := client.NewClient(ep, client.DefaultClientConfig(cep.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		return RegistryMounts{C: c}
	}
	admin := client(60)
	_, mep := newTestMember(t, 61, MemberConfig{Active: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A prefix the registry holds nothing under lists empty, without
	// an error (the center answers a page with no entry, not ENOENT).
	if kvs, err := admin.List(ctx, DefaultTablePrefix); err != nil || len(kvs) != 0 {
		t.Fatalf("List of an empty table: %v %v", kvs, err)
	}
	if err := AddCluster(ctx, admin, DefaultTablePrefix, "c1", []MemberSpec{{mep.Addr(), RoleActive}}); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, admin, DefaultTablePrefix, "/data", "c1"); err != nil {
		t.Fatal(err)
	}
	src := client(62)
	r, err := New(src.C.Endpoint(), testRouterConfig(t), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if res, err := r.Resolve("/data/x"); err != nil || res.Active != mep.Addr() {
		t.Fatalf("resolve from the registry's table: %+v %v", res, err)
	}
	// A mount added later arrives by push.
	if err := AddMount(ctx, admin, DefaultTablePrefix, "/more", "c1"); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(10*time.Second, func() bool { _, err := r.Resolve("/more/y"); return err == nil }) {
		t.Fatal("pushed mount not seen")
	}
	if err := DelMount(ctx, admin, DefaultTablePrefix, "/data"); err != nil {
		t.Fatal(err)
	}
	if !rfctest.WaitFor(10*time.Second, func() bool { _, err := r.Resolve("/data/x"); return err == wire.ENOENT }) {
		t.Fatal("pushed unmount not seen")
	}
	tab, err := ListTable(ctx, admin, DefaultTablePrefix)
	if err != nil || len(tab.Mounts) != 1 || len(tab.Clusters) != 1 {
		t.Fatalf("ListTable through the registry: %+v %v", tab, err)
	}
}
