package center

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/client"
	"fastcall/node/registry/internal/regtest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// clientBehindRelay returns a client (node 7) of p that reaches p's
// first center through a relay, and that relay.
func clientBehindRelay(t *testing.T, p *pair) (*client.Client, *simnet.Relay) {
	t.Helper()
	relay, err := simnet.NewRelay(p.EPs[0].Addr(), simnet.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Close)
	cfg := client.DefaultClientConfig(relay.Addr(), p.EPs[1].Addr())
	cfg.AttemptTimeout = 500 * time.Millisecond
	cl, err := client.NewClient(regtest.Endpoint(t, 7, ""), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl, relay
}

// TestRetriedWriteAnsweredAtOtherCenter: a client's write is applied at
// the first center (and replicated), but the reply is lost, so the
// client fails over and sends the same operation to the other center.
// That center finds the operation applied and answers with its version:
// a conditional write is not refused as a conflict with itself, a delete
// does not find its own tombstone absent.
func TestRetriedWriteAnsweredAtOtherCenter(t *testing.T) {
	p := startPair(t, nil)
	direct := newClient(t, regtest.Endpoint(t, 8, ""), p.Addrs()...)
	ctx := rfctest.Context(t, 30*time.Second)
	// putOld writes "old" at key and returns its version.
	putOld := func(t *testing.T, key string) uint64 {
		v, err := direct.Put(ctx, key, []byte("old"), 0)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name string
		// prepare returns the version of "kv/"+key the write expects.
		prepare func(t *testing.T, key string) uint64
		run     func(cl *client.Client, key string, expect uint64) (uint64, error)
		deleted bool
	}{
		{"cas", putOld, func(cl *client.Client, key string, expect uint64) (uint64, error) {
			return cl.CAS(ctx, key, expect, []byte("new"), 0)
		}, false},
		{"cas-create", func(t *testing.T, key string) uint64 { return 0 },
			func(cl *client.Client, key string, expect uint64) (uint64, error) {
				return cl.CAS(ctx, key, 0, []byte("new"), 0)
			}, false},
		{"delete-expected", putOld, func(cl *client.Client, key string, expect uint64) (uint64, error) {
			return cl.DeleteVersion(ctx, key, expect)
		}, true},
		{"delete-any", func(t *testing.T, key string) uint64 {
			putOld(t, key)
			return 0
		}, func(cl *client.Client, key string, expect uint64) (uint64, error) {
			return cl.DeleteVersion(ctx, key, 0)
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := "retry/" + tc.name
			expect := tc.prepare(t, key)
			cl, relay := clientBehindRelay(t, p)
			// A read through the relay first: the client learns the
			// first center's incarnation, as any client that has talked
			// to it has, so its write runs there at the first attempt
			// (a first-contact write is refused ESTALE, unrun).
			if _, err := cl.GetRaw(ctx, key); err != nil && wire.AsErrno(err) != wire.ENOENT {
				t.Fatal(err)
			}
			relay.CutReplies()
			v, err := tc.run(cl, key, expect)
			if err != nil {
				t.Fatalf("retried write: %v", err)
			}
			for i, c := range p.Cs {
				rec, ok := c.Entry(sdk.KVPrefix + key)
				var r sdk.Record
				if !ok || sdk.ParseRecord(rec, &r) != wire.OK {
					t.Fatalf("center %d: no record", i)
				}
				if r.Version != v || (r.Kind == sdk.KindTombstone) != tc.deleted {
					t.Fatalf("center %d holds v%d kind %d; the write returned v%d", i, r.Version, r.Kind, v)
				}
			}
			if st := p.Cs[1].Stats(); st.Retried == 0 {
				t.Fatalf("the other center answered without finding the operation: %+v", st)
			}
		})
	}
}

// TestRetriedDeregisterAnswered: the same for a deregistration, whose
// retry would otherwise find its own tombstone and answer ENOENT.
func TestRetriedDeregisterAnswered(t *testing.T) {
	p := startPair(t, nil)
	cl, relay := clientBehindRelay(t, p)
	ctx := rfctest.Context(t, 10*time.Second)
	if _, err := cl.Register(ctx, "svc1", "127.0.0.1:9", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	relay.CutReplies()
	if err := cl.Deregister(ctx, "svc1"); err != nil {
		t.Fatalf("retried deregistration: %v", err)
	}
}

// TestUnknownOutcomeNotConflict: when an attempt of a write may have been
// applied (EAGAIN: the center could not finish it) and the next attempt
// is refused with ECONFLICT, the client cannot tell whether the refusal
// is of its own earlier write: it reports the outcome unknown
// (ETIMEDOUT), never ECONFLICT.
func TestUnknownOutcomeNotConflict(t *testing.T) {
	ep := regtest.Endpoint(t, 100, "")
	var calls atomic.Int32
	h := func(req *rfc.Request, reply *wire.Params) wire.Errno {
		if calls.Add(1) == 1 {
			return wire.EAGAIN
		}
		return wire.ECONFLICT
	}
	if err := ep.Register(registry.CallPut, "reg-put", registry.SchemaPut, 0, h); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, regtest.Endpoint(t, 7, ""), ep.Addr())
	_, err := cl.CAS(rfctest.Context(t, 5*time.Second), "k", 2, []byte("v"), 0)
	if wire.AsErrno(err) != wire.ETIMEDOUT {
		t.Fatalf("got %v after an attempt that may have been applied, want ETIMEDOUT", err)
	}
	// A first refusal is definite.
	calls.Store(1)
	if _, err := cl.CAS(rfctest.Context(t, 5*time.Second), "k", 2, []byte("v"), 0); wire.AsErrno(err) != wire.ECONFLICT {
		t.Fatalf("got %v, want ECONFLICT", err)
	}
}

// TestReissuedVersionConverges: centers A and B hold a key at v5 made
// by B; B loses v5 (its log cut back, as when it crashes before the
// fsync) and restarts holding v3; its anti-entropy cannot reach A, which
// it then declares dead, and a client writes the key at B, which makes
// version 5 again for another record. Once they meet again, the two
// centers must end with one record.
func TestReissuedVersionConverges(t *testing.T) {
	r := startRelayed(t)
	epB, addrB, relay, cfgB, a, b := r.epB, r.epB.Addr(), r.relay, r.cfgB, r.a, r.b
	dirB := cfgB.DataDir
	ctx := rfctest.Context(t, 30*time.Second)
	cl := newClient(t, regtest.Endpoint(t, 7, ""), addrB)
	if _, err := cl.Put(ctx, "k", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dirB, LogName)
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lost, err := cl.Put(ctx, "k", []byte("2"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := a.Entry("kv/k"); sdk.RecordVersion(rec) != lost {
		t.Fatalf("A does not hold v%d", lost)
	}
	b.Close()
	epB.Close()
	if err := os.Truncate(logPath, fi.Size()); err != nil {
		t.Fatal(err)
	}
	// B starts cut off from A: its first anti-entropy round fails.
	relay.Cut()
	epB = regtest.Endpoint(t, 101, addrB.String())
	b = startCenterOn(t, epB, cfgB)
	if !rfctest.WaitFor(10*time.Second, func() bool { return b.Stats().SyncFailed > 0 }) {
		t.Fatal("B's first anti-entropy round did not fail")
	}
	epB.MarkDead(relay.Addr())
	v, err := cl.Put(ctx, "k", []byte("3"), 0)
	if err != nil || v != lost {
		t.Fatalf("write at the restarted B: v%d %v; want the lost v%d made again", v, err, lost)
	}
	relay.Heal()
	epB.MarkAlive(relay.Addr())
	// Both run an anti-entropy round; then they hold the same record.
	ra, rb := a.Stats().SyncRounds, b.Stats().SyncRounds
	a.kickSync()
	b.kickSync()
	if !rfctest.WaitFor(10*time.Second, func() bool { return a.Stats().SyncRounds > ra && b.Stats().SyncRounds > rb }) {
		t.Fatal("anti-entropy rounds did not complete")
	}
	recA, _ := a.Entry("kv/k")
	recB, _ := b.Entry("kv/k")
	if !bytes.Equal(recA, recB) {
		var x, y sdk.Record
		sdk.ParseRecord(recA, &x)
		sdk.ParseRecord(recB, &y)
		t.Fatalf("centers diverge: A v%d %q, B v%d %q", x.Version, x.Body, y.Version, y.Body)
	}
}

// TestReplicaSameVersionIsNotDuplicate: a replica with the version of the
// record held but another epoch is another record (its sender restarted
// and made the version again), refused as a conflict, not acknowledged as
// a duplicate; a replica with the very stamp held is a duplicate.
func TestReplicaSameVersionIsNotDuplicate(t *testing.T) {
	p := startPair(t, nil)
	cl := newClient(t, regtest.Endpoint(t, 7, ""), p.Addrs()...)
	ctx := rfctest.Context(t, 10*time.Second)
	if _, err := cl.Put(ctx, "k", []byte("held"), 0); err != nil {
		t.Fatal(err)
	}
	// The write may have gone to the other center (a first attempt late
	// on a loaded host) and reach this one by replication or
	// anti-entropy.
	var held []byte
	if !rfctest.WaitFor(10*time.Second, func() bool { held, _ = p.Cs[0].Entry("kv/k"); return held != nil }) {
		t.Fatal("the record never reached center 0")
	}
	var r sdk.Record
	if sdk.ParseRecord(held, &r) != wire.OK {
		t.Fatal("no record")
	}
	ep := p.EPs[1] // replicas come from the peer center's address
	send := func(rec []byte) wire.Errno {
		return regtest.Call(t, ep, p.EPs[0].Addr(), registry.CallReplicate, func(ps *wire.Params) {
			ps.Uint64(1)
			ps.Uint64(0)
			ps.String("kv/k")
			ps.Bytes(rec)
		})
	}
	other := r
	other.Epoch++
	other.Body = []byte("other")
	if e := send(sdk.AppendRecord(nil, &other)); e != wire.ECONFLICT {
		t.Fatalf("same version, another epoch: %v, want ECONFLICT", e)
	}
	if now, _ := p.Cs[0].Entry("kv/k"); !bytes.Equal(now, held) {
		t.Fatal("the record held was replaced")
	}
	if e := send(held); e != wire.OK {
		t.Fatalf("the record held again: %v, want OK", e)
	}
}

// TestRestartedCenterWaitsForAntiEntropy: a center that restarts while
// the other center took writes alone does not serve clients what it
// holds until an anti-entropy round brought it those writes: it answers
// EBUSY (the client goes to the other center), then the new record.
func TestRestartedCenterWaitsForAntiEntropy(t *testing.T) {
	r := startRelayed(t)
	epA, epB, addrB, relay, cfgB, b := r.epA, r.epB, r.epB.Addr(), r.relay, r.cfgB, r.b
	ctx := rfctest.Context(t, 30*time.Second)
	atA := newClient(t, regtest.Endpoint(t, 7, ""), epA.Addr())
	atB := newClient(t, regtest.Endpoint(t, 8, ""), addrB)
	if _, err := atA.Put(ctx, "k", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	b.Close()
	epB.Close()
	epA.MarkDead(r.cfgA.Peer)
	if _, err := atA.Put(ctx, "k", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	relay.Cut()
	b = startCenterOn(t, regtest.Endpoint(t, 101, addrB.String()), cfgB)
	if !rfctest.WaitFor(10*time.Second, func() bool { return b.Stats().SyncFailed > 0 }) {
		t.Fatal("B's first anti-entropy round did not fail")
	}
	// One call straight to B, not through the client: the client retries
	// EBUSY until its deadline, and a deadline that ends an attempt on a
	// loaded host reports ETIMEDOUT instead of B's answer.
	var ps wire.Params
	ps.Reset(make([]byte, 1200))
	ps.String(sdk.KVPrefix + "k")
	rfc.AppendPad(&ps, atB.Endpoint().Config().MaxDatagram)
	var rep rfc.Reply
	if err := atB.Endpoint().Call(ctx, addrB, registry.CallGet, &ps, &rep); wire.AsErrno(err) != wire.EBUSY {
		t.Fatalf("read at B before it caught up: %v, want EBUSY", err)
	}
	relay.Heal()
	if e, err := atB.Get(ctx, "k"); err != nil || string(e.Value) != "2" {
		t.Fatalf("read at B after: %q %v, want \"2\"", e.Value, err)
	}
}

// relayed is two centers A (index 0) and B (index 1) whose anti-entropy
// runs only at start, each reaching the other through a relay the test
// can cut.
type relayed struct {
	epA, epB   *rfc.Endpoint
	relay      *simnet.Relay
	cfgA, cfgB Config
	a, b       *Center
}

func startRelayed(t *testing.T) *relayed {
	t.Helper()
	r := &relayed{epA: regtest.Endpoint(t, 100, ""), epB: regtest.Endpoint(t, 101, "")}
	var err error
	if r.relay, err = simnet.NewRelay(r.epA.Addr(), simnet.RelayConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.relay.Close)
	// Both ways go through the relay: A sees B at B's upstream socket.
	upB, ok := r.relay.Upstream(r.epB.Addr())
	if !ok {
		t.Fatal("relay closed")
	}
	r.cfgA = testCenterConfig(filepath.Join(t.TempDir(), "a"), 0, upB)
	r.cfgB = testCenterConfig(filepath.Join(t.TempDir(), "b"), 1, r.relay.Addr())
	r.cfgA.AntiEntropyEvery, r.cfgB.AntiEntropyEvery = time.Hour, time.Hour
	r.a = startCenterOn(t, r.epA, r.cfgA)
	if r.b, err = StartCenter(r.epB, r.cfgB); err != nil {
		t.Fatal(err)
	}
	return r
}
