package rfc_test

import (
	"context"
	"fmt"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// callAdd is an application call number: applications use
// wire.CallUserBase and above.
const callAdd = wire.CallUserBase + 1

// A server registers its calls on an endpoint and starts it; a client
// endpoint (port 0: any free port) makes calls to the server's address.
func Example() {
	cfg := rfc.DefaultConfig() // loopback, port 0
	cfg.NodeID = 1
	srv, err := rfc.Open(cfg)
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	// add: two i64 in, their sum out. Idempotent: running it twice is
	// harmless, so it skips the duplicate-request cache.
	err = srv.Register(callAdd, "add", wire.Schema{wire.TypeInt64, wire.TypeInt64}, rfc.Idempotent,
		func(req *rfc.Request, reply *wire.Params) wire.Errno {
			reply.Int64(req.Param(0).Int64() + req.Param(1).Int64())
			return wire.OK
		})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil { // registered before the first request is read
		panic(err)
	}

	cli, err := rfc.Listen(rfc.DefaultConfig()) // node id 0: a client, not a member
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	var p wire.Params
	p.Reset(make([]byte, 64))
	p.Int64(40)
	p.Int64(2)
	var rep rfc.Reply // reusable: one per caller allocates nothing per call
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := cli.Call(ctx, srv.Addr(), callAdd, &p, &rep); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("40 + 2 =", rep.Param(0).Int64())

	// Errors are error numbers: an unknown call number is ENOCALL.
	err = cli.Call(ctx, srv.Addr(), wire.CallUserBase+99, nil, nil)
	fmt.Println(wire.AsErrno(err) == wire.ENOCALL)
	// Output:
	// 40 + 2 = 42
	// true
}

// Go starts calls without waiting, so one goroutine can fan a request
// out to many nodes and gather the replies.
func ExampleEndpoint_Go() {
	var servers []*rfc.Endpoint
	for i := 0; i < 3; i++ {
		cfg := rfc.DefaultConfig()
		cfg.NodeID = uint32(10 + i)
		ep, err := rfc.Open(cfg)
		if err != nil {
			panic(err)
		}
		defer ep.Close()
		node := int64(cfg.NodeID)
		_ = ep.Register(callAdd, "add", wire.Schema{wire.TypeInt64, wire.TypeInt64}, rfc.Idempotent|rfc.Inline,
			func(req *rfc.Request, reply *wire.Params) wire.Errno {
				reply.Int64(node*100 + req.Param(0).Int64() + req.Param(1).Int64())
				return wire.OK
			})
		_ = ep.Start()
		servers = append(servers, ep)
	}
	cli, err := rfc.Listen(rfc.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer cli.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var calls []*rfc.Pending
	for _, s := range servers {
		var p wire.Params // encoded at once: its buffer may be reused after Go returns
		p.Reset(make([]byte, 64))
		p.Int64(1)
		p.Int64(2)
		pc, err := cli.Go(ctx, s.Addr(), callAdd, &p)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		calls = append(calls, pc)
	}
	for _, pc := range calls {
		if err := pc.Wait(); err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Println(pc.Reply().Param(0).Int64())
		}
		pc.Release() // the reply is valid until Release
	}
	// Output:
	// 1003
	// 1103
	// 1203
}

// A deferred handler returns at once and answers later, from any
// goroutine, without holding a worker meanwhile. Here one long-lived
// goroutine answers the calls queued for it.
func ExampleEndpoint_RegisterDeferred() {
	later := make(chan *rfc.Deferred, 16)
	go func() {
		for d := range later {
			d.Params().String("answered later")
			d.Reply(wire.OK)
		}
	}()
	defer close(later) // after srv.Close: no handler sends any more
	srv, err := rfc.Open(rfc.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	err = srv.RegisterDeferred(wire.CallUserBase+2, "later", nil, rfc.Idempotent,
		func(req *rfc.Request, d *rfc.Deferred) wire.Errno {
			select {
			case later <- d:
				return wire.OK // the reply is d's now
			default:
				return wire.EBUSY // the reply, at once
			}
		})
	if err != nil {
		panic(err)
	}
	_ = srv.Start()

	cli, err := rfc.Listen(rfc.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	var rep rfc.Reply
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := cli.Call(ctx, srv.Addr(), wire.CallUserBase+2, nil, &rep); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(rep.Param(0).Str())
	// Output: answered later
}
