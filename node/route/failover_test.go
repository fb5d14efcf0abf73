package route

import (
	"context"
	"testing"
	"time"

	"fastcall/wire"
)

// A client's tight deadline cuts the forwarding attempt short; the
// timeout that follows is no evidence against the healthy active member:
// no promotion, one active member, and the next call goes to it.
func TestTightDeadlineNoFailover(t *testing.T) {
	tc := newTestCluster(t, nil)
	margin := DefaultReplyMargin
	const calls = 40
	for i := 0; i < calls; i++ {
		var ps wire.Params
		ps.Reset(make([]byte, 256))
		ps.String("/c1/tight")
		ps.Bytes([]byte("v"))
		d := margin + time.Duration(10+10*i)*time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_ = tc.client.Call(ctx, tc.rep.Addr(), CallNSPut, &ps, nil)
		cancel()
	}
	// Every call has ended at the router once its audit record exists;
	// the failover decision comes before the record.
	var es []AuditEntry
	if !waitFor(10*time.Second, func() bool {
		es = tc.audit(t, AuditFilter{Call: "ns-put", Limit: 1000})
		return len(es) == calls
	}) {
		t.Fatalf("audit: %d records, want %d", len(es), calls)
	}
	if c := tc.router.Counters(); c[0].Failovers != 0 {
		t.Fatalf("failovers %d, want 0", c[0].Failovers)
	}
	if !tc.members[0].Active() || tc.members[1].Active() {
		t.Fatalf("roles: member0 active %v, member1 active %v", tc.members[0].Active(), tc.members[1].Active())
	}
	if res, _ := tc.router.Resolve("/c1/x"); res.Active != tc.meps[0].Addr() {
		t.Fatalf("router believes %v active", res.Active)
	}
}

// A promotion fences the member it replaces: a member the engine holds
// dead but that is alive after all is demoted before the standby takes
// over, so the sub-cluster never has two active members.
func TestFailoverFencesOldActive(t *testing.T) {
	tc := newTestCluster(t, nil)
	a0, a1 := tc.meps[0].Addr(), tc.meps[1].Addr()
	tc.rep.MarkDead(a0) // a false verdict: member 0 is alive
	if _, err := tc.put(t, "/c1/k", []byte("v")); err != nil {
		t.Fatalf("put: %v", err)
	}
	if tc.members[0].Active() || !tc.members[1].Active() {
		t.Fatalf("roles: member0 active %v, member1 active %v", tc.members[0].Active(), tc.members[1].Active())
	}
	if res, _ := tc.router.Resolve("/c1/k"); res.Active != a1 {
		t.Fatalf("router believes %v active", res.Active)
	}
	// Member 0 answers ENOTACTIVE to a direct call now.
	var ps wire.Params
	ps.Reset(make([]byte, 64))
	ps.String("/c1/k")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := tc.client.Call(ctx, a0, CallNSGet, &ps, nil); err != wire.ENOTACTIVE {
		t.Fatalf("direct get on the fenced member: %v, want ENOTACTIVE", err)
	}
}
