package sdk_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"fastcall/node/registry/agent"
	"fastcall/node/registry/internal/centertest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
)

// A node's agent mirrors the registry into a shared-memory map file; a
// local process opens the file with sdk.Open and looks services up with
// no network call at all.
func ExampleReader_Lookup() {
	dir, err := os.MkdirTemp("", "sdk-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// A registry center (centertest.StartSingle) and, on the node, its
	// agent.
	cen := centertest.StartSingle(100)
	defer cen.Close()
	ep := rfctest.Must(rfc.Listen(rfctest.Config(7)))
	defer ep.Close()
	mapFile := filepath.Join(dir, "node.map")
	acfg := agent.DefaultAgentConfig(mapFile, cen.Addr())
	acfg.Logger = rfctest.Quiet
	a, err := agent.StartAgent(ep, acfg)
	if err != nil {
		panic(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Register(ctx, "cache", "127.0.0.1:6379", []byte("zone=a"), 10*time.Second); err != nil {
		panic(err)
	}

	// The local process: open the map and look the service up. The
	// registration reaches the map once the center has pushed it.
	r, err := sdk.Open(mapFile)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	var ins []sdk.Instance
	for end := time.Now().Add(5 * time.Second); len(ins) == 0 && time.Now().Before(end); {
		if ins, err = r.Lookup("cache"); err != nil || len(ins) == 0 {
			time.Sleep(5 * time.Millisecond) // poll until pushed, with a deadline
		}
	}
	for _, in := range ins {
		fmt.Println(in.Name, in.Addr, string(in.Meta), in.Node)
	}
	// Output: cache 127.0.0.1:6379 zone=a 7
}
