package memdisk

import (
	"testing"
	"time"

	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc/rfctest"
)

// TestCenterCrashOnMemDisk: a center on the in-memory disk keeps across a
// crash every write it acknowledged under FsyncAlways, and loses under
// FsyncNever the writes no fsync covered.
func TestCenterCrashOnMemDisk(t *testing.T) {
	for _, tc := range []struct {
		policy center.FsyncPolicy
		kept   bool
	}{{center.FsyncAlways, true}, {center.FsyncNever, false}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			d := New()
			ep := regtest.Endpoint(t, 100, "")
			cfg := center.DefaultConfig("/data/center")
			cfg.Logger = rfctest.Quiet
			cfg.Fsync = tc.policy
			cfg.Disk = d.Boot()
			c, err := center.StartCenter(ep, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ccfg := client.DefaultClientConfig(ep.Addr())
			ccfg.AttemptTimeout = 200 * time.Millisecond
			cl, err := client.NewClient(regtest.Endpoint(t, 7, ""), ccfg)
			if err != nil {
				t.Fatal(err)
			}
			v, err := cl.Put(rfctest.Context(t, 5*time.Second), "k", []byte("v"), 0)
			if err != nil {
				t.Fatal(err)
			}
			// The process dies: nothing it does from now on reaches the disk.
			ep.Close()
			d.Crash()
			c.Close()

			cfg.Disk = d.Boot()
			c, err = center.StartCenter(regtest.Endpoint(t, 100, ep.Addr().String()), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rec, ok := c.Entry(sdk.KVPrefix + "k")
			switch {
			case tc.kept && (!ok || sdk.RecordVersion(rec) != v):
				t.Fatalf("acknowledged version %d lost (held: %v)", v, ok)
			case !tc.kept && ok:
				t.Fatalf("an unsynced write survived the crash (version %d)", sdk.RecordVersion(rec))
			}
		})
	}
}
