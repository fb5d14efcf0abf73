package campaign

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/dispatch"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestDispatchReflection: unauthenticated dispatch-submit requests that
// name a victim address (once, or many times with a long deadline) make
// a dispatcher rfcd send the victim nothing; the requests are answered
// with an error number. They name the node's incarnation, as a caller
// that heard from it does, so that the engine's fence does not refuse
// them (ESTALE) before the dispatcher sees them: a deadline past the
// bound is refused first (EINVAL), and within the bounds the victim is
// refused by the dispatcher's target list (EPERM).
func TestDispatchReflection(t *testing.T) {
	victim := rfctest.UDP(t)
	va := victim.LocalAddr().String()
	allowed := rfctest.UDP(t)
	n := startConfig(t, "disp.json", fmt.Sprintf(`{"addr": "127.0.0.1:0", "insecure": true, "log_level": "error", "roles": ["dispatcher"],
		"dispatcher": {"targets": [%q]}}`, allowed.LocalAddr().String()))
	c := udpTo(t, n.addr.String())
	codec, _ := wire.NewCodec(0, nil)
	inc := pingIncarnation(t, c, codec)
	dg := make([]byte, 1400)
	shapes := []struct {
		repeat   int
		deadline time.Duration
		want     wire.Errno
	}{{1, time.Second, wire.EPERM}, {75, 30 * time.Second, wire.EINVAL}, {20, 5 * time.Second, wire.EPERM}}
	asked, answered, reqBytes := 0, 0, 0
	var pk wire.Packet
	for round := 0; round < scale(20); round++ {
		for _, sh := range shapes {
			var ps wire.Params
			ps.Reset(make([]byte, 1300))
			ps.String("victim")
			ps.String("read")
			ps.Uint64(uint64(builtin.CallEcho))
			ps.Bytes(nil)
			ps.String(strings.TrimSuffix(strings.Repeat(va+",", sh.repeat), ","))
			ps.Int64(int64(sh.deadline / time.Millisecond))
			asked++
			h := wire.Header{Flags: wire.FlagRequest, CallNo: dispatch.CallSubmit, CallID: uint64(asked) << 20, PeerInc: inc, Stamp: uint32(time.Now().UnixMilli())}
			m, e := codec.EncodeParams(dg, &h, &ps)
			if e != wire.OK {
				t.Fatalf("encode: %v", e)
			}
			reqBytes += m
			c.Write(dg[:m])
			errs, _ := awaitReplies(c, codec, &pk, h.CallID, 100*time.Millisecond)
			if len(errs) != 1 || errs[0] != sh.want {
				t.Fatalf("target named %d times, deadline %v: answered %v, want one %v", sh.repeat, sh.deadline, errs, sh.want)
			}
			answered++
		}
	}
	got, _ := drain(victim, 500*time.Millisecond)
	if got != 0 {
		t.Fatalf("the victim received %d datagrams from %d requests", got, asked)
	}
	record(t, row{
		Fault:   "dispatch reflection",
		Params:  "unauthenticated dispatch-submit naming the node's incarnation and a victim 1, 20 and 75 times, deadlines 1-30 s; dispatcher.targets lists another address",
		Load:    fmt.Sprintf("%d requests, %d bytes", asked, reqBytes),
		Checked: "datagrams received by the victim = 0; each request answered once: EINVAL past the remote deadline bound, else EPERM (victim not on the target list)",
		Result:  fmt.Sprintf("pass: 0 datagrams at the victim, %d error replies", answered),
	})
}
