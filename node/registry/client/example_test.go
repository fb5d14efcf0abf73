package client_test

import (
	"context"
	"fmt"
	"time"

	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/centertest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// A node talks to the registry through a Client: a versioned key/value
// store with compare-and-set, and service registrations with leases. One
// center here (centertest.StartSingle); a real cluster runs two that back
// each other up.
func ExampleClient() {
	cen := centertest.StartSingle(100)
	defer cen.Close()

	ep := rfctest.Must(rfc.Listen(rfctest.Config(1)))
	defer ep.Close()
	c, err := client.NewClient(ep, client.DefaultClientConfig(cen.Addr()))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	v1, err := c.Put(ctx, "config/replicas", []byte("3"), 0)
	if err != nil {
		panic(err)
	}
	// Compare-and-set against an old version is refused.
	_, err = c.CAS(ctx, "config/replicas", v1-1, []byte("5"), 0)
	fmt.Println("stale CAS:", err)
	if _, err := c.CAS(ctx, "config/replicas", v1, []byte("5"), 0); err != nil {
		panic(err)
	}
	e, err := c.Get(ctx, "config/replicas")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s = %s\n", e.Key, e.Value)

	if _, err := c.Register(ctx, "db", "127.0.0.1:5432", []byte("primary"), 10*time.Second); err != nil {
		panic(err)
	}
	ins, err := c.Lookup(ctx, "db")
	if err != nil {
		panic(err)
	}
	for _, in := range ins {
		fmt.Println(in.Name, in.Addr, string(in.Meta), in.Node)
	}
	// Output:
	// stale CAS: ECONFLICT: conflicting operation
	// config/replicas = 5
	// db 127.0.0.1:5432 primary 1
}
