package route

import (
	"context"
	"math"
	"testing"
	"time"

	"fastcall/wire"
)

// TestSetRoleFarFutureEpochRefused: a member refuses (EINVAL) a set-role
// whose epoch is further ahead of its clock than the engine's age bound,
// which no router could have sent: nodes' clocks agree within it, and a
// router's epoch is its clock. Before, one set-role with epoch 2^64-1
// was obeyed and every later set-role from the router (fence, promotion)
// was refused ECONFLICT until the member restarted: its sub-cluster
// could no longer fail over.
func TestSetRoleFarFutureEpochRefused(t *testing.T) {
	ep := newEndpoint(t, 2, 0)
	m := NewMember(DefaultMemberConfig())
	if err := m.Register(ep); err != nil {
		t.Fatal(err)
	}
	cli := newEndpoint(t, 1, 0)
	setRole := func(active bool, epoch uint64) wire.Errno {
		var ps wire.Params
		ps.Reset(make([]byte, setRoleSize))
		ps.Bool(active)
		ps.Uint64(epoch)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return wire.AsErrno(cli.Call(ctx, ep.Addr(), CallSetRole, &ps, nil))
	}
	ahead := uint64(ep.Config().MaxAge + time.Minute)
	for _, epoch := range []uint64{math.MaxUint64, uint64(time.Now().UnixNano()) + ahead} {
		if e := setRole(true, epoch); e != wire.EINVAL {
			t.Errorf("set-role(true) at epoch %d: %v, want EINVAL", epoch, e)
		}
		if m.Active() {
			t.Errorf("set-role(true) at epoch %d obeyed", epoch)
			m.SetActive(false)
		}
	}
	// A router's request, at its clock, is still obeyed.
	if e := setRole(true, uint64(time.Now().UnixNano())); e != wire.OK || !m.Active() {
		t.Fatalf("set-role(true) at the clock: %v, active %v", e, m.Active())
	}
}
