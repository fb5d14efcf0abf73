package campaign

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// claimFlood sends, from a socket that is no member of anyone, keyed
// heartbeat calls to a telling it that it is suspect or dead at its
// incarnation inc or at 2^32-1 (some with b's node id in the header),
// and probe-requests and probe-acks to b naming a in the same terms,
// until n datagrams are sent or stop is set, pausing a millisecond after
// every pace of them. It returns how many were
// sent and how many replies came back.
func claimFlood(t *testing.T, a, b netip.AddrPort, aNode, bNode, inc uint32, n, pace int, stop *atomic.Bool) (sent, replies int) {
	s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Error(err)
		return
	}
	defer s.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2000)
		for {
			if _, _, err := s.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			replies++
		}
	}()
	codec, _ := wire.NewCodec(0, testKey)
	dg := make([]byte, 1400)
	seg := make([]byte, 512)
	for ; sent < n && !stop.Load(); sent++ {
		claim := uint64(inc)
		if sent%2 == 1 {
			claim = math.MaxUint32
		}
		state := uint64(heartbeat.StateDead)
		if sent%4 >= 2 {
			state = uint64(heartbeat.StateSuspect)
		}
		src := uint32(900)
		if sent%3 == 0 {
			src = bNode // a member's node id proves nothing
		}
		h := wire.Header{Flags: wire.FlagRequest, Src: src, CallID: uint64(sent+1) << 20, Incarnation: 1, Budget: 1_000_000,
			Stamp: uint32(time.Now().UnixMilli())}
		var ps wire.Params
		ps.Reset(seg)
		dst := a
		switch sent % 5 {
		case 3:
			h.CallNo, dst = heartbeat.CallProbeRequest, b
			h.Flags |= wire.FlagOneWay
			ps.Uint64(uint64(sent))
			ps.Uint64(uint64(aNode))
			ps.String(a.String())
			ps.Uint64(state)
			ps.Uint64(claim)
		case 4:
			h.CallNo, dst = heartbeat.CallProbeAck, b
			h.Flags |= wire.FlagOneWay
			ps.Uint64(uint64(sent))
			ps.Uint64(uint64(aNode))
			ps.Bool(true)
			ps.Uint64(claim)
		default:
			h.CallNo = heartbeat.CallHeartbeat
			ps.Uint64(1)
			ps.Uint64(state)
			ps.Uint64(claim)
			ps.Uint64(claim)
		}
		m, e := codec.EncodeParams(dg, &h, &ps)
		if e != wire.OK {
			t.Errorf("encode: %v", e)
			break
		}
		s.WriteToUDPAddrPort(dg[:m], dst)
		if sent%pace == pace-1 {
			time.Sleep(time.Millisecond) // paces the flood; it synchronises nothing
		}
	}
	drainUntil := time.Now().Add(200 * time.Millisecond)
	s.SetReadDeadline(drainUntil)
	wg.Wait()
	return sent, replies
}

// countLines returns the lines of the file at path that contain s.
func countLines(t *testing.T, path, s string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), s)
}

// TestNonMemberClaims: two keyed rfcd members watch each other. A socket
// that is no member sends the first heartbeats telling it that it is
// suspect or dead at its incarnation and at 2^32-1, some with the other
// member's node id in the header, and sends the other member
// probe-requests and probe-acks naming the first in the same terms. The
// first member's incarnation is unchanged and the other's view of it too.
// Then the first member is stopped (SIGSTOP) past the detection bound,
// while the flood goes on, and continued: the other member declares it
// dead and sees it alive again, and its "declared dead" log lines stay
// within one a second.
func TestNonMemberClaims(t *testing.T) {
	key := keyFile(t)
	free := rfctest.FreeAddrs(t, 2)
	aaddr, baddr := free[0], free[1]
	logPath := filepath.Join(t.TempDir(), "a.log")
	a := &node{args: []string{"-config", writeConfig(t, "a.json", fmt.Sprintf(`{"addr": %q, "node": 21, "key_file": %q,
		"log_level": "warn", "heartbeat": {"members": [%q], "interval": "100ms"}}`, aaddr, key, baddr))}}
	// rfcd logs to stderr; the shell keeps it in logPath.
	a.start(t, "sh", "-c", `exec "$0" "$@" 2>>`+logPath)
	defer a.kill()
	b := startConfig(t, "b.json", fmt.Sprintf(`{"addr": %q, "node": 22, "key_file": %q,
		"log_level": "error", "heartbeat": {"members": [%q], "interval": "100ms"}}`, baddr, key, aaddr))
	cli := listenClient(t, testKey)
	alive := aliveAs(0)
	if m, ok := waitMember(t, cli, b.addr, a.addr, alive); !ok {
		t.Fatalf("b never saw a alive: %+v", m)
	}
	if m, ok := waitMember(t, cli, a.addr, b.addr, alive); !ok {
		t.Fatalf("a never saw b alive: %+v", m)
	}
	view := func(addr netip.AddrPort) heartbeat.MembersView {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		v, err := heartbeat.QueryMembersView(ctx, cli, addr)
		if err != nil {
			t.Fatalf("members of %v: %v", addr, err)
		}
		return v
	}
	inc0 := view(a.addr).Incarnation
	if st := engineStats(t, cli, a.addr); st["incarnation"] != uint64(inc0) {
		t.Fatalf("a's engine incarnation %d, its heartbeat view says %d", st["incarnation"], inc0)
	}
	linesBefore := countLines(t, logPath, "\n")

	var stop atomic.Bool
	sent, replies := claimFlood(t, a.addr, b.addr, 21, 22, inc0, scale(1000), 50, &stop)
	if t.Failed() {
		return
	}
	if st := engineStats(t, cli, a.addr); st["incarnation"] != uint64(inc0) || view(a.addr).Incarnation != inc0 {
		t.Fatalf("after %d non-member claims a's incarnation is %d (engine) / %d (heartbeat), was %d", sent, st["incarnation"], view(a.addr).Incarnation, inc0)
	}
	if m, err := memberOf(t, cli, b.addr, a.addr); err != nil || m.State != heartbeat.StateAlive || m.Incarnation != inc0 {
		t.Fatalf("after the claims b's view of a is %+v %v, want alive at %d", m, err, inc0)
	}
	floodLines := countLines(t, logPath, "\n") - linesBefore

	// Stop a past the detection bound while the flood goes on.
	var wg sync.WaitGroup
	var sent2, replies2 int
	wg.Add(1)
	go func() {
		defer wg.Done()
		sent2, replies2 = claimFlood(t, a.addr, b.addr, 21, 22, inc0, scale(100000), 2, &stop)
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	bound := heartbeat.DetectBound(heartbeat.DefaultConfig().WithInterval(100 * time.Millisecond))
	if err := a.proc.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	dead, ok := waitMember(t, cli, b.addr, a.addr, inState(heartbeat.StateDead))
	if ok {
		// Stopped twice the detection bound at least, as a long
		// pause would be; this waits for no event.
		time.Sleep(time.Until(stopped.Add(2 * bound)))
	}
	a.proc.Cmd.Process.Signal(syscall.SIGCONT)
	if !ok {
		t.Fatalf("b did not declare a dead while a was stopped: %+v", dead)
	}
	held := time.Since(stopped)
	resumed := time.Now()
	back, ok := waitMember(t, cli, b.addr, a.addr, inState(heartbeat.StateAlive))
	if !ok {
		t.Fatalf("b never saw a alive again after SIGCONT: %+v (declared dead at %d)", back, dead.Incarnation)
	}
	rejoin := time.Since(resumed)
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	since := time.Since(stopped)
	deadLines := countLines(t, logPath, "this node was declared dead")
	if limit := 1 + int(since/time.Second) + 1; deadLines > limit {
		t.Fatalf("%d 'declared dead' lines in %v (at most one a second)", deadLines, since)
	}
	if floodLines != 0 {
		t.Fatalf("the non-member claims wrote %d log lines", floodLines)
	}
	incNow := view(a.addr).Incarnation
	record(t, row{
		Fault: "incarnation claims from a non-member",
		Params: fmt.Sprintf("two keyed rfcd members (heartbeat 100 ms, detection bound %v); a non-member socket with the key sends heartbeats telling member a it is suspect or dead at its incarnation and at 2^32-1 "+
			"(a third with member b's node id in the header), and probe-requests and probe-acks naming a to b; then a is stopped (SIGSTOP) until b declares it dead and twice the bound has passed, and continued", bound),
		Load:    fmt.Sprintf("%d claims before the stop (%d answered), %d during the stop and rejoin (%d answered)", sent, replies, sent2, replies2),
		Checked: "a's incarnation (engine and heartbeat) and b's view of it unchanged by the claims; b sees a dead while stopped and alive again after; a's 'declared dead' log lines at most one a second; no log line from the claims",
		Result: fmt.Sprintf("pass: incarnation %d unchanged by the claims; a stopped %v, alive at b %v after SIGCONT at incarnation %d; %d 'declared dead' lines over %v, 0 lines from the claims",
			inc0, held.Round(time.Millisecond), rejoin.Round(time.Millisecond), incNow, deadLines, since.Round(time.Millisecond)),
	})
}
