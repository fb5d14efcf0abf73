package heartbeat_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// open opens an endpoint on loopback, port 0, without starting it:
// rfctest.Config is rfc.DefaultConfig for node, logging nothing.
func open(node uint32) *rfc.Endpoint { return rfctest.Must(rfc.Open(rfctest.Config(node))) }

// wait returns the first event of kind about addr, or false after d.
func wait(ch <-chan heartbeat.Event, kind heartbeat.EventKind, addr netip.AddrPort, d time.Duration) (heartbeat.Event, bool) {
	timeout := time.After(d)
	for {
		select {
		case ev := <-ch:
			if ev.Kind == kind && ev.Addr == addr {
				return ev, true
			}
		case <-timeout:
			return heartbeat.Event{}, false
		}
	}
}

// A member watches another that is not answering yet: a listener sees it
// suspected, then declared dead, then alive once it starts.
func ExampleService_OnEvent() {
	a, b := open(1), open(2)
	defer a.Close()
	defer b.Close()
	cfg := heartbeat.DefaultConfig().WithInterval(20 * time.Millisecond)
	cfg.Logger = rfctest.Quiet

	svcA, err := heartbeat.Start(a, cfg, []netip.AddrPort{b.Addr()})
	if err != nil {
		panic(err)
	}
	defer svcA.Close()
	events := make(chan heartbeat.Event, 64)
	remove := svcA.OnEvent(func(ev heartbeat.Event) {
		select { // a listener must not block
		case events <- ev:
		default:
		}
	})
	defer remove()
	_ = a.Start()

	for _, k := range []heartbeat.EventKind{heartbeat.EventSuspect, heartbeat.EventDead} {
		if ev, ok := wait(events, k, b.Addr(), 10*time.Second); ok {
			fmt.Println(ev.Kind)
		}
	}
	svcB, err := heartbeat.Start(b, cfg, []netip.AddrPort{a.Addr()})
	if err != nil {
		panic(err)
	}
	defer svcB.Close()
	_ = b.Start() // b answers from now on
	if ev, ok := wait(events, heartbeat.EventAlive, b.Addr(), 10*time.Second); ok {
		fmt.Println(ev.Kind, "node", ev.Node)
	}
	// Output:
	// suspect
	// dead
	// alive node 2
}

// A master starts a task on a worker over the heartbeat channel and waits
// for its result. Were the worker lost, the task would end with ENODEAD
// at once; were the master lost, the worker would cancel the task.
func ExampleMaster() {
	m, w := open(1), open(2)
	defer m.Close()
	defer w.Close()
	cfg := heartbeat.DefaultConfig().WithInterval(20 * time.Millisecond)
	cfg.Logger = rfctest.Quiet
	svcM, err := heartbeat.Start(m, cfg, []netip.AddrPort{w.Addr()})
	if err != nil {
		panic(err)
	}
	defer svcM.Close()
	svcW, err := heartbeat.Start(w, cfg, []netip.AddrPort{m.Addr()})
	if err != nil {
		panic(err)
	}
	defer svcW.Close()

	const kindUpper = 1
	worker, err := heartbeat.NewWorker(svcW, heartbeat.DefaultWorkerConfig(),
		func(ctx context.Context, t *heartbeat.TaskInfo) ([]byte, wire.Errno) {
			if t.Kind != kindUpper {
				return nil, wire.EINVAL
			}
			return bytes.ToUpper(t.Payload), wire.OK
		})
	if err != nil {
		panic(err)
	}
	defer worker.Close()
	master, err := heartbeat.NewMaster(svcM, heartbeat.DefaultMasterConfig())
	if err != nil {
		panic(err)
	}
	defer master.Close()
	_ = m.Start()
	_ = w.Start()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	task, err := master.Start(ctx, w.Addr(), kindUpper, []byte("hello"))
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	res, err := task.Wait(ctx)
	fmt.Printf("%s %v\n", res, err)
	// Output: HELLO <nil>
}
