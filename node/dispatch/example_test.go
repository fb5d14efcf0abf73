package dispatch_test

import (
	"context"
	"fmt"
	"time"

	"fastcall/node/dispatch"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

const callApply = wire.CallUserBase + 1 // what each target runs

// A dispatcher fans one operation out to three targets in parallel and
// gathers their outcomes; a conflicting operation on the same resource is
// refused while the first holds its marker. The marker store is in
// memory here; a cluster uses the registry (NewRegistryStore).
func Example() {
	var targets []dispatch.Target
	for i := 0; i < 3; i++ {
		ep := rfctest.Must(rfc.Listen(rfctest.Config(uint32(20 + i))))
		defer ep.Close()
		fail := i == 2 // the third target refuses
		_ = ep.Register(callApply, "apply", wire.Schema{wire.TypeString}, 0,
			func(req *rfc.Request, reply *wire.Params) wire.Errno {
				if fail {
					return wire.ENOSPC
				}
				return wire.OK
			})
		targets = append(targets, dispatch.Target{Addr: ep.Addr()})
	}

	ep := rfctest.Must(rfc.Listen(rfctest.Config(1)))
	defer ep.Close()
	cfg := dispatch.DefaultConfig()
	cfg.Logger = rfctest.Quiet
	d, err := dispatch.Start(ep, cfg, dispatch.NewMemStore(dispatch.DefaultMemStoreKeys))
	if err != nil {
		panic(err)
	}
	defer d.Close()

	var p wire.Params
	p.Reset(make([]byte, 64))
	p.String("v2")
	op := &dispatch.Op{Resource: "table/users", Kind: dispatch.KindUpdate, Call: dispatch.CallOf(callApply, &p),
		Targets: targets, Deadline: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := d.Submit(ctx, op)
	if err != nil {
		panic(err)
	}
	st, err := d.Wait(ctx, id)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %s: %d targets, %d failed\n", st.Kind, st.Resource, st.Targets, st.Failed)
	for i, o := range st.Outcomes {
		fmt.Println("target", i, o.Errno.String())
	}
	// While an update holds the marker, a delete of the resource is
	// refused with ECONFLICT.
	fmt.Println(dispatch.Conflicts(dispatch.KindUpdate, dispatch.KindDelete))
	// Output:
	// update table/users: 3 targets, 1 failed
	// target 0 OK
	// target 1 OK
	// target 2 ENOSPC
	// true
}
