package rfc

import (
	"net"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/wire"
)

var (
	keyA = []byte("cluster-key-A-0123456789abcdef!!")
	keyB = []byte("cluster-key-B-0123456789abcdef!!")
)

// rawConn sends hand-made datagrams to ep and reads what comes back.
func rawConn(t *testing.T, ep *Endpoint) *net.UDPConn {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(ep.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readReply(c *net.UDPConn, d time.Duration) ([]byte, bool) {
	c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 2048)
	n, err := c.Read(b)
	if err != nil {
		return nil, false
	}
	return b[:n], true
}

func encodeReq(t *testing.T, key []byte, callNo uint16, id uint64, stamp uint32, f func(*wire.Params)) []byte {
	return encodeReqTo(t, key, callNo, id, stamp, 0, f)
}

// encodeReqTo is encodeReq naming the callee's incarnation peerInc, as a
// caller does once it has heard the callee.
func encodeReqTo(t *testing.T, key []byte, callNo uint16, id uint64, stamp, peerInc uint32, f func(*wire.Params)) []byte {
	c, err := wire.NewCodec(0, key)
	if err != nil {
		t.Fatal(err)
	}
	var p wire.Params
	p.Reset(make([]byte, 1400))
	if f != nil {
		f(&p)
	}
	h := wire.Header{Flags: wire.FlagRequest, CallNo: callNo, Src: 77, CallID: id, Incarnation: 5, PeerInc: peerInc, Stamp: stamp, Budget: 5_000_000}
	b := make([]byte, 1400)
	n, e := c.EncodeParams(b, &h, &p)
	if e != wire.OK {
		t.Fatal(e)
	}
	return b[:n]
}

func nowStamp() uint32 { return uint32(time.Now().UnixMilli()) }

// TestAuthenticatedOnly: an endpoint with a key answers nothing to a
// datagram without its tag or with another key's, and runs nothing. In
// virtual time: the wait for an answer that must not come is exact.
func TestAuthenticatedOnly(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		srv := w.server(func(c *Config) { c.Key = keyA })
		good := w.endpoint(func(c *Config) { c.Key = keyA })
		if err := good.Call(ctxTimeout(t, time.Second), srv.Addr(), CallPing, nil, nil); err != nil {
			t.Fatalf("keyed call: %v", err)
		}
		for _, tc := range []struct {
			name   string
			key    []byte
			reason string
		}{{"no key", nil, "unauthenticated"}, {"wrong key", keyB, "tag"}} {
			s := w.rawSender(srv.Addr(), tc.key, 77, 5)
			for i := 0; i < 5; i++ {
				s.send(encodeReq(t, tc.key, callIncr, uint64(i+1)<<20, nowStamp(), nil))
			}
			if b, ok := s.sim.recv(time.Second); ok {
				t.Fatalf("%s: stranger got %d bytes back", tc.name, len(b))
			}
			if got := srv.Stats().Drops[tc.reason]; got != 5 {
				t.Fatalf("%s: drops %v", tc.name, srv.Stats().Drops)
			}
		}
		if srv.runs.Load() != 0 {
			t.Fatalf("%d unauthenticated increments ran", srv.runs.Load())
		}
	})
}

// TestReplay: a keyed datagram replayed within the age bound is answered
// from the duplicate cache and runs once; one past the bound, on the
// server's clock, is dropped, and so is one stamped in the future. In
// virtual time, so the bound is checked to the millisecond.
func TestReplay(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		const maxAge = 300 * time.Millisecond
		srv := w.server(func(c *Config) { c.Key = keyA; c.MaxAge = maxAge })
		s := w.rawSender(srv.Addr(), keyA, 77, 5)
		start := time.Now()
		dg := encodeReqTo(t, keyA, callIncr, 1<<20, nowStamp(), srv.Incarnation(), nil)
		for i := 0; i < 3; i++ { // the original and two immediate replays
			s.send(dg)
			if _, ok := s.sim.recv(time.Second); !ok {
				t.Fatalf("no reply to copy %d", i)
			}
		}
		if srv.runs.Load() != 1 {
			t.Fatalf("replays within the window ran %d times", srv.runs.Load())
		}
		// At the age bound: still within it, answered from the cache.
		time.Sleep(maxAge - time.Since(start))
		s.send(dg)
		if _, ok := s.sim.recv(time.Second); !ok {
			t.Fatal("a replay at the age bound was not answered")
		}
		// A millisecond past it: dropped.
		time.Sleep(time.Millisecond)
		s.send(dg)
		if _, ok := s.sim.recv(200 * time.Millisecond); ok {
			t.Fatal("late replay answered")
		}
		// A datagram stamped in the future is refused too.
		s.send(encodeReqTo(t, keyA, callIncr, 2<<20, nowStamp()+10_000, srv.Incarnation(), nil))
		if _, ok := s.sim.recv(200 * time.Millisecond); ok {
			t.Fatal("future-stamped datagram answered")
		}
		if srv.runs.Load() != 1 || srv.Stats().Drops["too-old"] != 2 {
			t.Fatalf("runs %d drops %v", srv.runs.Load(), srv.Stats().Drops)
		}
	})
}

func TestAmplificationBound(t *testing.T) {
	const callFat = wire.CallUserBase + 50
	fat := func(r *Request, rep *wire.Params) wire.Errno {
		rep.Bytes(make([]byte, 1000))
		return wire.OK
	}
	for _, key := range [][]byte{nil, keyA} {
		srv := newTestEndpoint(t, func(c *Config) { c.Key = key })
		if err := srv.Register(callFat, "fat", nil, Idempotent, fat); err != nil {
			t.Fatal(err)
		}
		c := rawConn(t, srv)
		req := encodeReq(t, key, callFat, 1<<20, nowStamp(), nil)
		c.Write(req)
		b, ok := readReply(c, time.Second)
		if !ok {
			t.Fatal("no reply")
		}
		if key == nil {
			if len(b) > AmplifyFactor*len(req) {
				t.Fatalf("%d-byte reply to a %d-byte unauthenticated request", len(b), len(req))
			}
			codec, _ := wire.NewCodec(0, nil)
			var pk wire.Packet
			if codec.Decode(&pk, b) != wire.ReasonNone || pk.Errno != wire.EMSGSIZE {
				t.Fatalf("want EMSGSIZE, got %v", pk.Errno)
			}
		} else if len(b) < 1000 {
			t.Fatalf("authenticated request got a %d-byte reply", len(b))
		}
	}
}

func TestStrangerErrorRateLimit(t *testing.T) {
	srv := newTestEndpoint(t, func(c *Config) { c.StrangerErrorRate = 50 })
	c := rawConn(t, srv)
	start := time.Now()
	for i := 0; i < 300; i++ {
		c.Write(encodeReq(t, nil, wire.CallUserBase+999, uint64(i+1)<<20, nowStamp(), nil))
	}
	// The first reply may be slow on a loaded machine; then read until
	// a quiet spell.
	replies, wait := 0, 5*time.Second
	for {
		if _, ok := readReply(c, wait); !ok {
			break
		}
		replies, wait = replies+1, 200*time.Millisecond
	}
	// 50 of burst plus what refilled (50 a second) while the server read
	// the requests, which ended before the last reply.
	most := 50 + int(50*time.Since(start).Seconds()) + 1
	if replies < 40 || replies > most {
		t.Fatalf("%d error replies to 300 bad requests, want 40 to %d", replies, most)
	}
	if srv.Stats().Drops["error-rate-limited"] == 0 {
		t.Fatal("rate limiting not counted")
	}
}

func TestKeyRotationLive(t *testing.T) {
	srv := newTestServer(t, func(c *Config) { c.Key = keyA })
	oldCli := newTestEndpoint(t, func(c *Config) { c.Key = keyA })
	newCli := newTestEndpoint(t, func(c *Config) { c.Key = keyB })
	call := func(ep *Endpoint) error {
		return ep.Call(ctxTimeout(t, 300*time.Millisecond), srv.Addr(), CallPing, nil, nil)
	}
	if call(oldCli) != nil || call(newCli) == nil {
		t.Fatal("before rotation")
	}
	if err := srv.SetKeys(keyB, keyA); err != nil {
		t.Fatal(err)
	}
	// Replies now go out under the new key: the old client cannot check
	// them, the new one can; both are heard.
	if err := call(newCli); err != nil {
		t.Fatalf("new key during rotation: %v", err)
	}
	if err := oldCli.SetKeys(keyB, keyA); err != nil {
		t.Fatal(err)
	}
	if err := call(oldCli); err != nil {
		t.Fatalf("rotated client: %v", err)
	}
	if err := srv.SetKeys(keyB, nil); err != nil {
		t.Fatal(err)
	}
	stale := newTestEndpoint(t, func(c *Config) { c.Key = keyA })
	if err := call(stale); wire.AsErrno(err) != wire.ETIMEDOUT {
		t.Fatalf("old key after rotation: %v", err)
	}
	plain := newTestEndpoint(t, nil)
	if plain.SetKeys(keyA, nil) != wire.EINVAL {
		t.Fatal("checksum endpoint accepted a key")
	}
}

// replayPeer is a keyed server and a raw peer that has pinged it once:
// captured is that ping, for a test to replay.
type replayPeer struct {
	srv      *testServer
	raw      *rawSender
	stamp    uint32 // the stamp of captured
	captured []byte
}

// newReplayPeer starts the server and the peer and makes the first ping.
func newReplayPeer(t *testing.T, w *simWorld) *replayPeer {
	t.Helper()
	r := &replayPeer{srv: w.server(func(c *Config) { c.Key = keyA }), stamp: nowStamp()}
	r.raw = w.rawSender(r.srv.Addr(), keyA, 21, 210)
	r.captured = r.ping(1<<20, r.stamp)
	r.raw.callOK(r.captured, "ping")
	return r
}

// ping is a ping request with call id id and stamp st.
func (r *replayPeer) ping(id uint64, st uint32) []byte {
	return r.raw.encode(wire.Header{Flags: wire.FlagRequest, CallNo: CallPing, CallID: id,
		PeerInc: r.srv.Incarnation(), Budget: 5_000_000, Stamp: st}, nil)
}

// replay sends the captured ping again, checks that the server read it
// and drains its answer, if any.
func (r *replayPeer) replay(t *testing.T) {
	t.Helper()
	rx := r.srv.Stats().Rx
	r.raw.send(r.captured)
	synctest.Wait()
	if got := r.srv.Stats().Rx; got != rx+1 {
		t.Fatalf("the server read %d datagrams, want %d", got, rx+1)
	}
	r.raw.recv(200 * time.Millisecond)
}

// fresh makes a ping stamped after the captured one and checks that it
// is answered.
func (r *replayPeer) fresh(t *testing.T) {
	t.Helper()
	r.raw.callOK(r.ping(2<<20, r.stamp+1000), "fresh ping")
}

// TestReplayDoesNotRevive: a peer declared dead is revived by a
// sign of life, a fresh request from it. A copy of a request it sent
// before it was declared dead, replayed within the age bound by anyone on
// the path (the tag is the peer's own), is no sign of life: the peer stays
// dead. A request it stamps later revives it.
func TestReplayDoesNotRevive(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		r := newReplayPeer(t, w)
		srv, raw := r.srv, r.raw
		srv.MarkDead(raw.addr())
		r.replay(t)
		if info, _ := srv.Peer(raw.addr()); info.State != PeerDead {
			t.Fatalf("a replayed request revived a dead peer: state %v", info.State)
		}
		r.fresh(t)
		if info, _ := srv.Peer(raw.addr()); info.State != PeerAlive {
			t.Fatalf("a fresh request left the peer %v", info.State)
		}
	})
}

// TestReplayNoSignOfLife: a copy of a request the peer sent, replayed
// within the age bound, is no sign of life of a suspect or alive peer
// either: its last-heard time does not move and a suspect peer stays
// suspect (a membership layer reading it would keep a crashed peer alive
// for the whole age bound). A request it stamps later is one.
func TestReplayNoSignOfLife(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		r := newReplayPeer(t, w)
		srv, raw := r.srv, r.raw
		heard, _ := srv.Peer(raw.addr())
		srv.MarkSuspect(raw.addr())
		time.Sleep(time.Second) // virtual
		r.replay(t)
		if info, _ := srv.Peer(raw.addr()); info.State != PeerSuspect || info.LastHeardNs != heard.LastHeardNs {
			t.Fatalf("a replayed request is a sign of life: state %v, last heard moved by %v",
				info.State, time.Duration(info.LastHeardNs-heard.LastHeardNs))
		}
		r.fresh(t)
		if info, _ := srv.Peer(raw.addr()); info.State != PeerAlive || info.LastHeardNs <= heard.LastHeardNs {
			t.Fatalf("a fresh request: state %v, last heard moved by %v", info.State, time.Duration(info.LastHeardNs-heard.LastHeardNs))
		}
	})
}
