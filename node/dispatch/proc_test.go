//go:build linux

package dispatch

// Multi-process test. The test binary re-executes itself (lock/proctest):
// TestMain runs a dispatcher instead of the tests in the dispatcher role. The dispatcher keeps
// its markers in a key/value store served over rfc by the parent (a
// test-only stand-in for the registry), so that the marker outlives the
// killed process. It reports on stdout: "submitted ID".

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

const (
	envKV     = "FASTCALL_DISPATCH_TEST_KV"
	envTarget = "FASTCALL_DISPATCH_TEST_TARGET"

	roleDispatcher = "dispatcher"

	// The test-only key/value calls served by the parent.
	callKVGet    = wire.CallUserBase + 0x20 // str key, bytes pad -> bytes value, u64 version
	callKVCAS    = wire.CallUserBase + 0x21 // str key, u64 expect, bytes value, i64 ttl ms -> u64 version
	callKVDelete = wire.CallUserBase + 0x22 // str key, u64 expect -> ()

	childDeadline = 30 * time.Second // a child never outlives this
	killedTTL     = 300 * time.Millisecond
	killedOpLimit = 2 * time.Second
	killedRes     = "killed/res"
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func() int{roleDispatcher: runChild})
}

// serveKV registers the test key/value calls over store on ep.
func serveKV(ep *rfc.Endpoint, store MarkerStore) error {
	ctx := context.Background()
	if err := ep.Register(callKVGet, "kv-get", wire.Schema{wire.TypeString, wire.TypeBytes}, rfc.Idempotent,
		func(r *rfc.Request, rep *wire.Params) wire.Errno {
			v, ver, err := store.Get(ctx, r.Param(0).Str())
			if err != nil {
				return wire.AsErrno(err)
			}
			rep.Bytes(v)
			rep.Uint64(ver)
			return wire.OK
		}); err != nil {
		return err
	}
	if err := ep.Register(callKVCAS, "kv-cas", wire.Schema{wire.TypeString, wire.TypeUint64, wire.TypeBytes, wire.TypeInt64}, 0,
		func(r *rfc.Request, rep *wire.Params) wire.Errno {
			ver, err := store.CAS(ctx, r.Param(0).Str(), r.Param(1).Uint64(), r.Param(2).Bytes(),
				time.Duration(r.Param(3).Int64())*time.Millisecond)
			if err != nil {
				return wire.AsErrno(err)
			}
			rep.Uint64(ver)
			return wire.OK
		}); err != nil {
		return err
	}
	return ep.Register(callKVDelete, "kv-delete", wire.Schema{wire.TypeString, wire.TypeUint64}, 0,
		func(r *rfc.Request, rep *wire.Params) wire.Errno {
			return wire.AsErrno(store.Delete(ctx, r.Param(0).Str(), r.Param(1).Uint64()))
		})
}

// kvClient is a MarkerStore over the test key/value calls.
type kvClient struct {
	ep  *rfc.Endpoint
	dst netip.AddrPort
}

func (c *kvClient) params() *wire.Params {
	p := new(wire.Params)
	p.Reset(make([]byte, 1300))
	return p
}

func (c *kvClient) CAS(ctx context.Context, key string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	p := c.params()
	p.String(key)
	p.Uint64(expect)
	p.Bytes(value)
	p.Int64(int64(ttl / time.Millisecond))
	var rep rfc.Reply
	if err := c.ep.Call(ctx, c.dst, callKVCAS, p, &rep); err != nil {
		return 0, err
	}
	return rep.Param(0).Uint64(), nil
}

func (c *kvClient) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	p := c.params()
	p.String(key)
	p.Bytes(make([]byte, 400)) // room for the reply under the amplification cap
	var rep rfc.Reply
	if err := c.ep.Call(ctx, c.dst, callKVGet, p, &rep); err != nil {
		return nil, 0, err
	}
	if rep.NParams() != 2 {
		return nil, 0, wire.EPROTO
	}
	return append([]byte(nil), rep.Param(0).Bytes()...), rep.Param(1).Uint64(), nil
}

func (c *kvClient) Delete(ctx context.Context, key string, expect uint64) error {
	p := c.params()
	p.String(key)
	p.Uint64(expect)
	return c.ep.Call(ctx, c.dst, callKVDelete, p, nil)
}

// runChild is the dispatcher process: it submits one long operation and
// waits to be killed.
func runChild() int {
	kv, err1 := netip.ParseAddrPort(os.Getenv(envKV))
	target, err2 := netip.ParseAddrPort(os.Getenv(envTarget))
	if err1 != nil || err2 != nil {
		return 2
	}
	ep, err := rfc.Listen(rfctest.Config(2))
	if err != nil {
		return 3
	}
	cfg := DefaultConfig()
	cfg.MarkerTTL = killedTTL
	cfg.Logger = quiet
	d, err := Start(ep, cfg, &kvClient{ep: ep, dst: kv})
	if err != nil {
		return 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := d.Submit(ctx, &Op{Resource: killedRes, Kind: KindUpdate, Call: workCall(1),
		Targets: []Target{{Addr: target}}, Deadline: killedOpLimit})
	if err != nil {
		os.Stdout.WriteString("error " + wire.AsErrno(err).String() + "\n")
		return 4
	}
	os.Stdout.WriteString("submitted " + strconv.FormatUint(id, 10) + "\n")
	select {
	case <-proctest.ParentGone():
	case <-time.After(childDeadline):
	}
	return 0
}

// TestKilledDispatcherMarkerExpires: a dispatcher killed mid-operation
// leaves its marker behind; the resource stays refused until the marker's
// TTL runs out, and can be operated on again right after.
func TestKilledDispatcherMarkerExpires(t *testing.T) {
	store := NewMemStore(0)
	kvEP := newEP(t, 10, nil)
	must(t, serveKV(kvEP, store))
	ts := startTargets(t, 1)
	// The child's target reads requests and never answers, so the child's
	// operation is still running when it is killed.
	silent := rfctest.UDP(t)
	arrived := make(chan struct{})
	go func() {
		buf := make([]byte, 2048)
		if _, _, err := silent.ReadFromUDP(buf); err == nil {
			close(arrived)
		}
		for {
			if _, _, err := silent.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()

	submitAt := time.Now()
	child := proctest.Start(t, roleDispatcher, envKV+"="+kvEP.Addr().String(), envTarget+"="+silent.LocalAddr().String())
	if l, ok := child.Next("", 10*time.Second); !ok || !strings.HasPrefix(l, "submitted ") {
		t.Fatalf("child did not submit: %q", l)
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the child's call did not reach the target")
	}

	// The marker is in the parent's store, with the child's holder.
	v, _, err := store.Get(context.Background(), DefaultKeyPrefix+killedRes)
	must(t, err)
	hs, e := decodeMarker(v, nil)
	if e != wire.OK || len(hs) != 1 || hs[0].kind != KindUpdate {
		t.Fatalf("marker %v %v", hs, e)
	}
	expiry := time.UnixMilli(hs[0].expiryMs)
	if lo, hi := submitAt.Add(killedOpLimit+killedTTL), time.Now().Add(killedOpLimit+killedTTL); expiry.Before(lo.Add(-time.Millisecond)) || expiry.After(hi.Add(time.Millisecond)) {
		t.Fatalf("marker expiry %v not within [%v, %v]", expiry, lo, hi)
	}

	// SIGKILL: no release runs.
	_ = child.Kill() // its exit status is the signal's

	d := newDispatcher(t, newEP(t, 3, nil), store, nil)
	ctx := ctxFor(t, 10*time.Second)
	var id uint64
	refused := 0
	for {
		attempt := time.Now()
		id, err = d.Submit(ctx, opFor(killedRes, KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second))
		now := time.Now()
		if err == nil {
			if now.Before(expiry) {
				t.Fatalf("resource free at %v, before the marker's expiry %v", now, expiry)
			}
			if refused == 0 {
				t.Fatal("the marker of the killed dispatcher refused nothing")
			}
			t.Logf("resource free %v after the marker's expiry, %d attempts refused before", now.Sub(expiry), refused)
			break
		}
		if errnoOf(err) != wire.ECONFLICT {
			t.Fatalf("while the marker lives: %v", err)
		}
		// An attempt started after the expiry must not be refused (a
		// little slack for the millisecond rounding of expiries).
		if attempt.After(expiry.Add(20 * time.Millisecond)) {
			t.Fatalf("refused %v after the marker's expiry", attempt.Sub(expiry))
		}
		refused++
		if now.After(expiry.Add(time.Second)) {
			t.Fatal("marker never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := d.Wait(ctx, id)
	if err != nil || st.Failed != 0 {
		t.Fatalf("%+v %v", st, err)
	}
}
