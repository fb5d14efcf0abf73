package campaign

// Amplification: no reply of an rfcd is more than three times the
// datagram that drew it.

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/daemon"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestAmplification: against an rfcd without a key, no reply is more than
// three times the size of the request that asked for it.
func TestAmplification(t *testing.T) {
	n := startNode(t, "-addr", "127.0.0.1:0", "-insecure", "-log-level", "error")
	c := udpTo(t, n.addr.String())
	codec, _ := wire.NewCodec(0, nil)
	worst := 0.0
	asked := 0
	dg := make([]byte, 1400)
	// answered sums the bytes of the replies to call id within d; a late
	// reply to an earlier request is not charged to this one.
	answered := func(id uint64, d time.Duration) (bytes int, inc uint32) {
		var pk wire.Packet
		sizes, inc := replySizes(c, codec, &pk, id, d)
		for _, n := range sizes {
			bytes += n
		}
		return bytes, inc
	}
	// The callee's incarnation, as a caller learns it on first contact:
	// non-idempotent requests that name it run, so their replies are
	// measured, not the engine's ESTALE refusal.
	peerInc := pingIncarnation(t, c, codec)
	for _, no := range []uint16{rfc.CallPing, rfc.CallStats, rfc.CallEngineStats, rfc.CallCalls, builtin.CallEcho, builtin.CallAdd, builtin.CallCounter,
		builtin.CallIncr, builtin.CallFault, 0x7777} {
		for _, shape := range []func(*wire.Params){
			nil,
			func(p *wire.Params) { p.Uint64(0); p.Bytes(nil) },
			func(p *wire.Params) { p.Bytes(nil) },
			func(p *wire.Params) { p.Int64(1); p.Int64(2) },
		} {
			var ps wire.Params
			ps.Reset(make([]byte, 256))
			if shape != nil {
				shape(&ps)
			}
			asked++
			h := wire.Header{Flags: wire.FlagRequest, CallNo: no, CallID: uint64(asked) << 20, PeerInc: peerInc,
				Stamp: uint32(time.Now().UnixMilli())}
			m, _ := codec.EncodeParams(dg, &h, &ps)
			c.Write(dg[:m])
			b, _ := answered(h.CallID, 100*time.Millisecond)
			if r := float64(b) / float64(m); r > worst {
				worst = r
			}
		}
	}
	if worst > rfc.AmplifyFactor {
		t.Fatalf("a reply was %.2f times its request", worst)
	}
	record(t, row{
		Fault:   "amplification",
		Params:  "rfcd without a key; every engine and built-in call, and an unknown one, with small requests",
		Load:    fmt.Sprintf("%d requests", asked),
		Checked: "bytes answered ÷ bytes asked per request ≤ 3",
		Result:  fmt.Sprintf("pass: worst ratio %.2f", worst),
	})
}

// TestDupCacheAmplification: against an rfcd master without a key, a
// large non-idempotent task-run (an echo task, so the reply is as large
// as the request) is followed by small datagrams with the same header
// (same source, incarnation and call id) and a shorter body. The
// duplicate cache answers only exact copies of the request: no reply is
// more than three times the datagram that drew it, and the short ones are
// dropped (dup-other).
func TestDupCacheAmplification(t *testing.T) {
	free := rfctest.FreeAddrs(t, 2)
	maddr, waddr := free[0], free[1]
	startConfig(t, "worker.json", fmt.Sprintf(`{"addr": %q, "node": 11, "insecure": true,
		"log_level": "error", "roles": ["worker"], "heartbeat": {"members": [%q], "interval": "100ms"}}`, waddr, maddr))
	master := startConfig(t, "master.json", fmt.Sprintf(`{"addr": %q, "node": 10, "insecure": true,
		"log_level": "error", "roles": ["master"], "heartbeat": {"members": [%q], "interval": "100ms"}}`, maddr, waddr))
	cli := listenClient(t, nil)
	if m, ok := waitMember(t, cli, master.addr, netip.MustParseAddrPort(waddr), aliveAs(0)); !ok {
		t.Fatalf("the master never saw the worker alive: %+v", m)
	}

	c := udpTo(t, master.addr.String())
	codec, _ := wire.NewCodec(0, nil)
	var pk wire.Packet
	// answered returns the size of each reply to call id within d; pk
	// holds the last.
	answered := func(id uint64, d time.Duration) ([]int, uint32) { return replySizes(c, codec, &pk, id, d) }
	peerInc := pingIncarnation(t, c, codec)
	before := engineStats(t, cli, master.addr)

	payload := make([]byte, 1200)
	for i := range payload {
		payload[i] = byte(i)
	}
	// taskRun encodes a task-run naming the worker with an echo task of
	// payload into a fresh buffer.
	taskRun := func(h *wire.Header, payload []byte, params bool) []byte {
		b := make([]byte, 1400)
		var ps wire.Params
		ps.Reset(make([]byte, 1400))
		if params {
			ps.String(waddr)
			ps.Uint64(daemon.TaskEcho)
			ps.Bytes(payload)
		}
		n, e := codec.EncodeParams(b, h, &ps)
		if e != wire.OK {
			t.Fatalf("encode: %v", e)
		}
		return b[:n]
	}
	worst, big, copies, copyReplies, short, shortReplies, bigBytes := 0.0, 0, 0, 0, 0, 0, 0
	schemaless, schemaErrs := 0, 0
	charge := func(sizes []int, sent int) {
		for _, s := range sizes {
			if r := float64(s) / float64(sent); r > worst {
				worst = r
			}
		}
	}
	for call := 0; call < scale(5); call++ {
		h := wire.Header{Flags: wire.FlagRequest, CallNo: daemon.CallTaskRun, Src: 77, CallID: uint64(call+1) << 20, Incarnation: 1,
			Budget: 5_000_000, PeerInc: peerInc, Stamp: uint32(time.Now().UnixMilli())}
		req := taskRun(&h, payload, true)
		c.Write(req)
		big++
		bigBytes += len(req)
		// The task's reply may take a while on a loaded machine: wait
		// for it, then for any second reply.
		var sizes []int
		for end := time.Now().Add(5 * time.Second); len(sizes) == 0 && time.Now().Before(end); {
			sizes, _ = answered(h.CallID, 100*time.Millisecond)
		}
		more, _ := answered(h.CallID, 50*time.Millisecond)
		sizes = append(sizes, more...)
		if len(sizes) != 1 || sizes[0] < len(payload) {
			t.Fatalf("task-run %d: replies of %v bytes, want one echoing %d bytes", call, sizes, len(payload))
		}
		charge(sizes, len(req))
		// Exact copies (and copies marked as retransmissions) are
		// answered from the cache with the reply of the same size.
		for i := 0; i < 4; i++ {
			cp := append([]byte(nil), req...)
			if i%2 == 1 {
				rh := h
				rh.Flags |= wire.FlagRetrans
				cp = taskRun(&rh, payload, true)
			}
			c.Write(cp)
			copies++
			sizes, _ := answered(h.CallID, 50*time.Millisecond)
			copyReplies += len(sizes)
			charge(sizes, len(cp))
		}
		// A copy's reply late on a loaded machine would land in a short
		// datagram's window and be charged to it: wait for a quiet spell.
		late, _ := answered(h.CallID, 300*time.Millisecond)
		copyReplies += len(late)
		charge(late, len(req))
		// The same header with a shorter body: no payload, a few
		// bytes of it, a cut payload, no parameters at all.
		// Those without parameters go last, so that a late error reply
		// to one is never charged to a shape that must go unanswered.
		for i := 0; i < 12; i++ {
			round, shape := i%3, []struct {
				cut    int
				params bool
			}{{0, true}, {8, true}, {100, true}, {0, false}}[i/3]
			sh := h
			if round%2 == 1 {
				sh.Flags |= wire.FlagRetrans
			}
			d := taskRun(&sh, payload[:shape.cut], shape.params)
			c.Write(d)
			short++
			sizes, _ := answered(h.CallID, 20*time.Millisecond)
			if !shape.params {
				// Fails the call's schema before the duplicate
				// cache is looked at: an error reply, never the
				// cached one.
				schemaless++
				for range sizes {
					if pk.Flags&wire.FlagError == 0 || pk.Errno != wire.EINVAL {
						t.Fatalf("a short datagram without parameters drew a reply with flags %#x, error %v", pk.Flags, pk.Errno)
					}
					schemaErrs++
				}
			} else {
				shortReplies += len(sizes)
			}
			charge(sizes, len(d))
		}
	}
	if worst > rfc.AmplifyFactor {
		t.Fatalf("a reply was %.2f times the datagram that drew it", worst)
	}
	var after map[string]uint64
	if !waitEngine(t, cli, master.addr, func(st map[string]uint64) bool {
		after = st
		return st["drop-dup-other"]-before["drop-dup-other"] >= uint64(short-schemaless-shortReplies)
	}) {
		t.Fatalf("%d short datagrams matching the schema, %d answered, %d counted dup-other", short-schemaless, shortReplies, after["drop-dup-other"]-before["drop-dup-other"])
	}
	if shortReplies != 0 {
		t.Fatalf("%d replies to %d short datagrams with a cached call's header", shortReplies, short-schemaless)
	}
	record(t, row{
		Fault: "duplicate-cache amplification",
		Params: fmt.Sprintf("rfcd master and worker without a key; a task-run echoing %d bytes (non-idempotent, cached), then its exact copies, "+
			"then datagrams with its header and a shorter body (no payload, 8 or 100 bytes of it, no parameters; retransmission flag on or off)", len(payload)),
		Load:    fmt.Sprintf("%d task-runs (%d bytes), %d copies, %d short datagrams", big, bigBytes, copies, short),
		Checked: "bytes of each reply ÷ bytes of the datagram that drew it ≤ 3; short datagrams that fit the call's schema unanswered and counted dup-other; those without parameters answered only EINVAL (schema check, before the cache)",
		Result: fmt.Sprintf("pass: worst ratio %.2f; %d of %d copies answered from the cache; %d replies to %d short datagrams fitting the schema, %d counted dup-other; %d EINVAL replies to %d without parameters",
			worst, copyReplies, copies, shortReplies, short-schemaless, after["drop-dup-other"]-before["drop-dup-other"], schemaErrs, schemaless),
	})
}
