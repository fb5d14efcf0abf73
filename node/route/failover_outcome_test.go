package route

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// outcomeCluster is c1 = {old (active, a bare endpoint whose forwarded
// handlers the test controls), standby (a Member)} behind a router.
type outcomeCluster struct {
	old, sep, rep, client *rfc.Endpoint
	standby               *Member
	router                *Router
	table                 *MemMounts
}

func newOutcomeCluster(t *testing.T, register func(old *rfc.Endpoint)) *outcomeCluster {
	t.Helper()
	oc := &outcomeCluster{}
	table := NewMemMounts()
	oc.table = table
	oc.old = newEndpoint(t, 10, 0)
	register(oc.old)
	oc.standby, oc.sep = newTestMember(t, 11, MemberConfig{})
	mountC1(t, table, oc.old.Addr(), oc.sep.Addr())
	cfg := testRouterConfig(t)
	cfg.ForwardTimeout = 10 * time.Second
	oc.router, oc.rep = startRouter(t, table, cfg)
	oc.client = newEndpoint(t, 100, 0)
	return oc
}

// failoverLostFence builds an outcomeCluster whose old active member
// (active set) answers set-role only while refuse is clear, sets refuse,
// marks the old member dead at the router and puts through it: the
// router promotes the standby, its fence of the old member not
// acknowledged.
func failoverLostFence(t *testing.T, refuse, active *atomic.Bool) *outcomeCluster {
	t.Helper()
	refuse.Store(true)
	active.Store(true)
	oc := newOutcomeCluster(t, func(old *rfc.Endpoint) {
		if err := old.Register(CallSetRole, "route-set-role", schemaSetRole, rfc.Idempotent,
			func(req *rfc.Request, reply *wire.Params) wire.Errno {
				if refuse.Load() {
					return wire.EBUSY // the demotion is not acknowledged
				}
				reply.Bool(active.Swap(req.Param(0).Bool()))
				return wire.OK
			}); err != nil {
			t.Fatal(err)
		}
	})
	oc.rep.MarkDead(oc.old.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := oc.client.Call(ctx, oc.rep.Addr(), CallNSPut, putKV(), nil); err != nil {
		t.Fatalf("put after the failover: %v", err)
	}
	return oc
}

// blockingHandler registers no as a forwarded call on ep that signals
// ran once it has run and then waits for release (bounded).
func blockingHandler(t *testing.T, ep *rfc.Endpoint, no uint16, name string, schema wire.Schema, flags rfc.CallFlags,
	ran chan<- struct{}, release <-chan struct{}) {
	t.Helper()
	if err := ep.Register(no, name, schema, flags, func(req *rfc.Request, reply *wire.Params) wire.Errno {
		select {
		case ran <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		return wire.EAGAIN
	}); err != nil {
		t.Fatal(err)
	}
}

// A non-idempotent call that reached the active member and got no
// answer (here the engine declares the member dead while the call is in
// flight) may have run there: the router promotes the standby but does
// not send the call to it; the client gets ETIMEDOUT and the audit
// record names the old member. An idempotent call in the same state is
// sent on to the promoted member.
func TestUnknownOutcomeNotReforwarded(t *testing.T) {
	for _, c := range []struct {
		name       string
		no         uint16
		schema     wire.Schema
		idempotent bool
	}{
		{"ns-put", CallNSPut, schemaNSPut, false},
		{"ns-get", CallNSGet, schemaNSGet, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ran := make(chan struct{}, 1)
			release := make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			defer free()
			var flags rfc.CallFlags
			if c.idempotent {
				flags = rfc.Idempotent
			}
			oc := newOutcomeCluster(t, func(old *rfc.Endpoint) {
				blockingHandler(t, old, c.no+RoutedOffset, c.name+"-fwd", ForwardedSchema(c.schema), flags, ran, release)
			})
			var ps wire.Params
			ps.Reset(make([]byte, 256))
			ps.String("/c1/k")
			if c.no == CallNSPut {
				ps.Bytes([]byte("v"))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := oc.client.Go(ctx, oc.rep.Addr(), c.no, &ps)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Release()
			select {
			case <-ran:
			case <-time.After(10 * time.Second):
				t.Fatal("the call never reached the active member")
			}
			oc.rep.MarkDead(oc.old.Addr())
			got := wire.AsErrno(p.Wait())
			free()
			if !oc.standby.Active() {
				t.Fatalf("the standby was not promoted")
			}
			if !c.idempotent {
				if got != wire.ETIMEDOUT {
					t.Fatalf("outcome %v, want ETIMEDOUT", got)
				}
				if w := oc.standby.Writes(); w != 0 {
					t.Fatalf("the promoted member ran the put again (%d writes)", w)
				}
			} else if got != wire.ENOENT {
				t.Fatalf("outcome %v, want ENOENT from the promoted member", got)
			}
			es := (&testCluster{rep: oc.rep, client: oc.client}).audit(t, AuditFilter{Call: c.name, Limit: 10})
			if len(es) != 1 {
				t.Fatalf("%d audit records, want 1", len(es))
			}
			e := es[0]
			if !c.idempotent && (e.Errno != wire.ETIMEDOUT || e.Dest != oc.old.Addr() || e.Tries != 1) {
				t.Fatalf("audit: outcome %v dest %v tries %d, want ETIMEDOUT at %v after 1", e.Errno, e.Dest, e.Tries, oc.old.Addr())
			}
			if c.idempotent && (e.Errno != wire.ENOENT || e.Dest != oc.sep.Addr() || e.Tries != 2) {
				t.Fatalf("audit: outcome %v dest %v tries %d, want ENOENT at %v after 2", e.Errno, e.Dest, e.Tries, oc.sep.Addr())
			}
		})
	}
}

// A demotion of the replaced member that is not acknowledged does not
// stop the promotion, and is re-sent until the member acknowledges it:
// once it can answer, the old active member is standby.
func TestUnackedDemotionResent(t *testing.T) {
	var refuse, active atomic.Bool
	oc := failoverLostFence(t, &refuse, &active)
	if !oc.standby.Active() || oc.standby.Writes() != 1 {
		t.Fatalf("standby active %v writes %d, want promoted with 1 write", oc.standby.Active(), oc.standby.Writes())
	}
	if !active.Load() {
		t.Fatalf("the refused demotion took effect")
	}
	refuse.Store(false)
	if !rfctest.WaitFor(10*time.Second, func() bool { return !active.Load() }) {
		t.Fatalf("the old active member was never demoted once it could answer")
	}
}

// A standby that takes the active role but whose acknowledgement the
// router never hears is not promoted in the router's view: it is
// demoted once it answers, so the sub-cluster does not keep two active
// members.
func TestUnackedPromotionDemoted(t *testing.T) {
	table := NewMemMounts()
	_, oep := newTestMember(t, 10, MemberConfig{Active: true})
	var active, acked atomic.Bool
	cep := newEndpoint(t, 11, 0)
	if err := cep.Register(CallSetRole, "route-set-role", schemaSetRole, rfc.Idempotent,
		func(req *rfc.Request, reply *wire.Params) wire.Errno {
			prev := active.Swap(req.Param(0).Bool())
			if req.Param(0).Bool() {
				return wire.EBUSY // the role is taken, the answer says otherwise
			}
			acked.Store(true)
			reply.Bool(prev)
			return wire.OK
		}); err != nil {
		t.Fatal(err)
	}
	mountC1(t, table, oep.Addr(), cep.Addr())
	_, rep := startRouter(t, table, testRouterConfig(t))
	client := newEndpoint(t, 100, 0)
	rep.MarkDead(oep.Addr())
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Call(cctx, rep.Addr(), CallNSPut, putKV(), nil); err != wire.ENODEAD {
		t.Fatalf("put: %v, want ENODEAD (no standby took over)", err)
	}
	if !rfctest.WaitFor(10*time.Second, func() bool { return acked.Load() && !active.Load() }) {
		t.Fatalf("the standby that took the role unheard was never demoted (active %v)", active.Load())
	}
}

// TestUnackedDemotionResentUnderFailoverLoad: a lost fence is re-sent
// while calls of another sub-cluster keep the failover goroutine busy.
// Here c2's members are both dead to the router, and a client sends a
// call for /c2 every millisecond without waiting for the answers: every
// call fails over, and each decision (a fence that no one answers)
// outlasts the calls that fail meanwhile. The goroutine took a queued
// call before a due round of demotions, so with a call always queued the
// round never came: the old active member of c1, which can answer again,
// stayed active beside the promoted standby for as long as the calls
// went on.
func TestUnackedDemotionResentUnderFailoverLoad(t *testing.T) {
	var refuse, active atomic.Bool
	oc := failoverLostFence(t, &refuse, &active)
	// s2 hears the demotion c2 is owed when added (a round that also
	// re-sends c1's lost fence), s1 the fence of a failover decision.
	owed, fenced := make(chan struct{}), make(chan struct{})
	s1 := silentMember(t, func(bool) bool { close(fenced); return false })
	s2 := silentMember(t, func(bool) bool { close(owed); return false })
	ctx := context.Background()
	if err := AddCluster(ctx, oc.table, DefaultTablePrefix, "c2", []MemberSpec{{s1, RoleActive}, {s2, RoleStandby}}); err != nil {
		t.Fatal(err)
	}
	if err := AddMount(ctx, oc.table, DefaultTablePrefix, "/c2", "c2"); err != nil {
		t.Fatal(err)
	}
	oc.rep.MarkDead(s1)
	oc.rep.MarkDead(s2)
	// Calls go out without waiting for their answers, as a flood does.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ps wire.Params
		ps.Reset(make([]byte, 64))
		ps.String("/c2/k")
		var pend []*rfc.Pending
		defer func() {
			for _, p := range pend {
				p.Release()
			}
		}()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			p, err := oc.client.Go(cctx, oc.rep.Addr(), CallNSGet, &ps)
			cancel()
			if err == nil {
				pend = append(pend, p)
			}
			if len(pend) >= 512 {
				for _, p := range pend {
					p.Release()
				}
				pend = pend[:0]
			}
		}
	}()
	for _, ch := range []chan struct{}{owed, fenced} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("c2's members heard no set-role")
		}
	}
	refuse.Store(false)
	if !rfctest.WaitFor(10*time.Second, func() bool { return !active.Load() }) {
		t.Fatal("the old active member of c1 was never demoted while c2's calls failed over")
	}
}
