package route_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"fastcall/node/route"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// A router forwards namespace calls by path to the active member of the
// sub-cluster its mount table names, and keeps an audit record of each.
// The mount table is in memory here; a cluster keeps it in the registry
// (RegistryMounts).
func Example() {
	dir, err := os.MkdirTemp("", "route-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// One sub-cluster, "users", of one active member.
	mep := rfctest.Must(rfc.Listen(rfctest.Config(30)))
	defer mep.Close()
	if err := route.NewMember(route.MemberConfig{Active: true}).Register(mep); err != nil {
		panic(err)
	}
	mounts := route.NewMemMounts()
	_ = route.AddCluster(ctx, mounts, route.DefaultTablePrefix, "users", []route.MemberSpec{{Addr: mep.Addr(), Role: route.RoleActive}})
	_ = route.AddMount(ctx, mounts, route.DefaultTablePrefix, "/users", "users")

	rep := rfctest.Must(rfc.Listen(rfctest.Config(2)))
	defer rep.Close()
	rc := route.DefaultConfig()
	rc.AuditDir = dir
	rc.Logger = rfctest.Quiet
	router, err := route.New(rep, rc, mounts)
	if err != nil {
		panic(err)
	}
	defer router.Close()

	// A client calls the router as it would call a member.
	cli := rfctest.Must(rfc.Listen(rfctest.Config(0)))
	defer cli.Close()
	var p wire.Params
	p.Reset(make([]byte, 128))
	p.String("/users/alice")
	p.Bytes([]byte("admin"))
	if err := cli.Call(ctx, rep.Addr(), route.CallNSPut, &p, nil); err != nil {
		panic(err)
	}
	p.Reset(make([]byte, 128))
	p.String("/users/alice")
	var reply rfc.Reply
	if err := cli.Call(ctx, rep.Addr(), route.CallNSGet, &p, &reply); err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", reply.Param(0).Bytes())

	router.Flush(time.Second)
	recs, err := route.AuditQuery(ctx, cli, rep.Addr(), route.AuditFilter{Call: "ns-put"})
	if err != nil {
		panic(err)
	}
	for _, r := range recs {
		fmt.Println(r.Name, r.Cluster, r.Dest == mep.Addr(), r.Errno.String())
	}
	// Output:
	// admin
	// ns-put users true OK
}
