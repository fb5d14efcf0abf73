package route

import (
	"testing"
	"testing/synctest"
	"time"

	"fastcall/wire"
)

// TestPromotionBeforeRestartRefused: a copy of a set-role(true) that a
// member obeyed before it restarted (a copy the network delayed, or one
// captured and replayed within the age bound: the call is idempotent, so
// neither the duplicate cache nor the restart rule stops it) reaches the
// restarted member, which came back as standby. It must stay standby:
// the router may have made another member active since, and does not
// know it has to demote this one again.
func TestPromotionBeforeRestartRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newSimNet(t)
		sc.startMember(t, 0, false)
		codec, _ := wire.NewCodec(0, nil)
		var ps wire.Params
		ps.Reset(make([]byte, setRoleSize))
		ps.Bool(true)
		ps.Uint64(uint64(time.Now().UnixNano()))
		h := wire.Header{Flags: wire.FlagRequest, CallNo: CallSetRole, Src: 1, CallID: 1 << 20, Incarnation: 9,
			Budget: 200_000, Stamp: uint32(time.Now().UnixMilli())}
		dg := make([]byte, wire.DefaultMaxDatagram)
		n, e := codec.EncodeParams(dg, &h, &ps)
		if e != wire.OK {
			t.Fatal(e)
		}
		router := sc.net.Attach(simAddr(1))
		defer router.Close()
		router.Send(dg[:n], sc.meps[0].Addr())
		time.Sleep(100 * time.Millisecond)
		if !sc.members[0].Active() {
			t.Fatal("the promotion was not obeyed")
		}

		// The member crashes and restarts as standby, as it must.
		time.Sleep(time.Second)
		sc.meps[0].Close()
		sc.startMember(t, 0, false)
		time.Sleep(time.Second)
		router.Send(dg[:n], sc.meps[0].Addr())
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if sc.members[0].Active() {
			t.Fatal("a set-role(true) sent before the member restarted made the restarted member active")
		}
	})
}
