package rfc

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastcall/wire"
)

// TestTagAttackLiveNode attacks a keyed endpoint on a real socket from a
// raw UDP socket: every bit position of a valid request flipped once,
// the request extended with zeros or cut (declared length fixed up, tag
// kept), its tag zeroed or taken from another request, its AUTH flag
// cleared, its version set to 1, and requests sealed under no key or
// another key. The node answers none of them, runs none, counts each as
// a drop under the reason the decoder gives, and still serves: a replay
// of the one valid request is answered from the duplicate cache without
// running again, and a fresh call works.
func TestTagAttackLiveNode(t *testing.T) {
	srv := newTestServer(t, func(c *Config) { c.Key = keyA })
	raw := rawConn(t, srv.Endpoint)
	inc := srv.Incarnation()
	valid := encodeReqTo(t, keyA, callIncr, 1<<20, nowStamp(), inc, nil)
	if _, err := raw.Write(valid); err != nil {
		t.Fatal(err)
	}
	if _, ok := readReply(raw, 5*time.Second); !ok {
		t.Fatal("no reply to the valid request")
	}
	if srv.runs.Load() != 1 {
		t.Fatalf("valid request ran %d times", srv.runs.Load())
	}

	base := encodeReqTo(t, keyA, callIncr, 2<<20, nowStamp(), inc, func(p *wire.Params) { p.Bytes([]byte("x")) })
	dup := func() []byte { return append([]byte(nil), base...) }
	var forged [][]byte
	for i := range base {
		b := dup()
		b[i] ^= 1 << (i % 8)
		forged = append(forged, b)
	}
	for _, k := range []int{1, 3, 16} {
		b := append(dup(), make([]byte, k)...)
		binary16(b[wire.OffPLen:], len(b)-wire.HeaderSize)
		forged = append(forged, b)
	}
	cut := dup()[:len(base)-1]
	binary16(cut[wire.OffPLen:], len(cut)-wire.HeaderSize)
	forged = append(forged, cut, base[:wire.HeaderSize-1])
	zero := dup()
	clear(zero[wire.OffTag : wire.OffTag+wire.SizeTag])
	moved := dup()
	copy(moved[wire.OffTag:], valid[wire.OffTag:wire.OffTag+wire.SizeTag])
	noAuth := dup()
	noAuth[wire.OffFlags] &^= wire.FlagAuth
	v1 := dup()
	v1[wire.OffVersion] = 1
	forged = append(forged, zero, moved, noAuth, v1,
		encodeReqTo(t, nil, callIncr, 3<<20, nowStamp(), inc, nil),
		encodeReqTo(t, keyB, callIncr, 4<<20, nowStamp(), inc, nil))

	// What the decoder says of each, with the node's key: the counts the
	// node must show. None may be accepted.
	ref, err := wire.NewCodec(0, keyA)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	var pk wire.Packet
	for i, b := range forged {
		r := ref.Decode(&pk, b)
		if r == wire.ReasonNone {
			t.Fatalf("forgery %d accepted by the codec", i)
		}
		want[r.String()]++
	}
	if want["tag"] == 0 || want["version"] < 2 || want["unauthenticated"] < 2 {
		t.Fatalf("forgeries do not reach the tag check as meant: %v", want)
	}

	rx := srv.Stats().Rx
	for _, b := range forged {
		if _, err := raw.Write(b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond) // stay inside the socket buffer
	}
	end := rx + uint64(len(forged))
	if !waitFor(10*time.Second, func() bool { return srv.Stats().Rx >= end }) {
		t.Fatalf("the node read %d of %d forgeries", srv.Stats().Rx-rx, len(forged))
	}
	if b, ok := readReply(raw, 200*time.Millisecond); ok {
		t.Fatalf("a forgery was answered: %x", b)
	}
	got := srv.Stats().Drops
	for name, n := range want {
		if got[name] != n {
			t.Fatalf("drops %v, want %v", got, want)
		}
	}
	if srv.runs.Load() != 1 {
		t.Fatalf("forgeries ran: %d runs", srv.runs.Load())
	}

	if _, err := raw.Write(valid); err != nil {
		t.Fatal(err)
	}
	if _, ok := readReply(raw, 5*time.Second); !ok {
		t.Fatal("no cached reply to the replayed valid request")
	}
	cli := newTestEndpoint(t, func(c *Config) { c.Key = keyA })
	if err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), callIncr, nil, nil); err != nil {
		t.Fatalf("call after the attack: %v", err)
	}
	if srv.runs.Load() != 2 {
		t.Fatalf("runs %d after a replay and one fresh call, want 2", srv.runs.Load())
	}
}

func binary16(b []byte, v int) { b[0], b[1] = byte(v>>8), byte(v) }

// TestTagRotationInFlight: callers keep calling (inline, worker and
// non-idempotent calls) while both ends swap their current and previous
// keys over and over, each at its own time. Every end accepts both keys
// throughout, so every call succeeds with the right result and no
// datagram is dropped on its tag; under -race it shows that the
// per-goroutine codecs re-key without sharing state. Then both ends drop
// keyA: the client's callers, on the same pending slots, get through to a
// server that has only keyB, a client with only keyB gets through to the
// server, and one with only keyA does not. That holds only if every codec
// that had been in use (pending slots, readers, workers) took the new keys.
func TestTagRotationInFlight(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	srv := newTestServer(t, func(c *Config) { c.Key = keyA; c.PrevKey = keyB; c.Logger = quiet })
	cli := newTestEndpoint(t, func(c *Config) { c.Key = keyA; c.PrevKey = keyB; c.Logger = quiet })
	dst := srv.Addr()
	call := func(g, i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var rep Reply
		switch i % 3 {
		case 0:
			err := cli.Call(ctx, dst, callAdd, params(func(p *wire.Params) { p.Int64(int64(g)); p.Int64(int64(i)) }), &rep)
			if err == nil && rep.Param(0).Int64() != int64(g+i) {
				err = errors.New("wrong sum")
			}
			return err
		case 1:
			return cli.Call(ctx, dst, callEchoW, params(func(p *wire.Params) { p.Bytes(make([]byte, 100*g)) }), &rep)
		default:
			return cli.Call(ctx, dst, callIncr, nil, nil)
		}
	}
	// callers runs 4 callers until stop says so and returns the first
	// error.
	callers := func(stop func(i int) bool) error {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for g := 0; g < 4; g++ {
			wg.Go(func() {
				for i := 0; !stop(i); i++ {
					if err := call(g, i); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	var done atomic.Bool
	res := make(chan error, 1)
	go func() { res <- callers(func(int) bool { return done.Load() }) }()
	keys := [2][]byte{keyA, keyB}
	for i := 0; i < 40; i++ {
		cur, prev := keys[i%2], keys[1-i%2]
		ends := []*Endpoint{srv.Endpoint, cli}
		if i%3 == 0 {
			ends[0], ends[1] = ends[1], ends[0]
		}
		for _, ep := range ends {
			if err := ep.SetKeys(cur, prev); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	done.Store(true)
	if err := <-res; err != nil {
		t.Fatalf("call during rotation: %v", err)
	}
	for _, ep := range []*Endpoint{srv.Endpoint, cli} {
		if d := ep.Stats().Drops; d["tag"] != 0 || d["unauthenticated"] != 0 {
			t.Fatalf("drops during rotation: %v", d)
		}
	}
	if srv.runs.Load() == 0 {
		t.Fatal("no calls ran during the rotation")
	}
	for _, ep := range []*Endpoint{srv.Endpoint, cli} {
		if err := ep.SetKeys(keyB, nil); err != nil {
			t.Fatal(err)
		}
	}
	onlyB := newTestServer(t, func(c *Config) { c.Key = keyB; c.Logger = quiet })
	dst = onlyB.Addr()
	if err := callers(func(i int) bool { return i == 12 }); err != nil {
		t.Fatalf("call to a keyB server after the rotation ended: %v", err)
	}
	for _, tc := range []struct {
		key  []byte
		want wire.Errno
	}{{keyB, wire.OK}, {keyA, wire.ETIMEDOUT}} {
		c := newTestEndpoint(t, func(c *Config) { c.Key = tc.key; c.Logger = quiet })
		for _, no := range []uint16{callAdd, callEchoW} {
			ps := params(func(p *wire.Params) { p.Int64(1); p.Int64(2) })
			if no == callEchoW {
				ps = params(func(p *wire.Params) { p.Bytes([]byte("x")) })
			}
			if err := c.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), no, ps, nil); wire.AsErrno(err) != tc.want {
				t.Fatalf("call %#x from a client keyed %q after the rotation ended: %v, want %v", no, tc.key[:13], err, tc.want)
			}
		}
	}
}

// TestTagLargestDatagramLive: keyed endpoints configured for the largest
// UDP payload exchange a request and a reply of exactly wire.MaxDatagram
// bytes over a real socket; a request past that size is refused before
// sending (EMSGSIZE); a forged datagram of that size is dropped on its tag.
func TestTagLargestDatagramLive(t *testing.T) {
	big := func(c *Config) { c.Key = keyA; c.MaxDatagram = wire.MaxDatagram }
	srv := newTestServer(t, big)
	cli := newTestEndpoint(t, big)
	const most = wire.MaxDatagram - wire.HeaderSize - wire.ParamHdrSize
	val := make([]byte, most)
	for i := range val {
		val[i] = byte(i * 7)
	}
	sized := func(n int) *wire.Params {
		p := new(wire.Params)
		p.Reset(make([]byte, wire.MaxDatagram))
		p.Bytes(val[:min(n, most)])
		if n > most {
			p.Bytes(nil)
		}
		return p
	}
	var rep Reply
	if err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), callEcho, sized(most), &rep); err != nil {
		t.Fatalf("echo of %d bytes: %v", most, err)
	}
	if rep.Len != wire.MaxDatagram || string(rep.Param(0).Bytes()) != string(val) {
		t.Fatalf("reply of %d bytes, echo intact %v", rep.Len, string(rep.Param(0).Bytes()) == string(val))
	}
	if err := cli.Call(ctxTimeout(t, 5*time.Second), srv.Addr(), callEcho, sized(most+1), nil); wire.AsErrno(err) != wire.EMSGSIZE {
		t.Fatalf("request past %d bytes: %v, want EMSGSIZE", wire.MaxDatagram, err)
	}
	forged := append([]byte(nil), rep.Datagram()...)
	forged[wire.OffFlags] = wire.FlagRequest | wire.FlagAuth
	forged[len(forged)-1] ^= 1
	raw := rawConn(t, srv.Endpoint)
	tags := srv.Stats().Drops["tag"]
	if _, err := raw.Write(forged); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return srv.Stats().Drops["tag"] == tags+1 }) {
		t.Fatalf("forged largest datagram: drops %v", srv.Stats().Drops)
	}
}
