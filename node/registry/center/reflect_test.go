package center

import (
	"net/netip"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/client"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestSpoofedSubscribeNoAmplifier: in checksum mode a sender that writes
// a victim's address as its source opens push streams to the victim with
// a few small reg-subscribe requests. The pushes of one write under the
// subscribed prefix, with their retransmissions and retries, must not
// send the victim more than rfc.AmplifyFactor times the bytes sent in its
// name. In a synctest bubble on rfc/simnet: the victim never answers, and
// the whole life of the streams passes in virtual time. In keyed mode the
// subscribes, sealed with the cluster key, stand for captured ones of a
// real subscriber replayed from the victim's address.
func TestSpoofedSubscribeNoAmplifier(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"checksum", nil},
		{"keyed-replay", []byte("cluster-key-A-0123456789abcdef!!")},
	} {
		t.Run(tc.name, func(t *testing.T) { spoofSubscribes(t, tc.key) })
	}
}

func spoofSubscribes(t *testing.T, key []byte) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		keyed := func(c *rfc.Config) { c.Key = key }
		ep := s.Listen(100, keyed)
		c, err := StartCenter(ep, testCenterConfig(t.TempDir(), 0, netip.AddrPort{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		victim := s.Net.Attach(s.Addr())
		t.Cleanup(func() { victim.Close() })
		got := make(chan int, 4096)
		go func() {
			b := make([]byte, wire.MaxDatagram)
			for {
				n, _, err := victim.Recv(b)
				if err != nil {
					close(got)
					return
				}
				got <- n
			}
		}()
		codec, err := wire.NewCodec(0, key)
		if err != nil {
			t.Fatal(err)
		}
		dg := make([]byte, wire.DefaultMaxDatagram)
		sent := 0
		for i := 0; i < DefaultMaxStreamsPerNode; i++ {
			var ps wire.Params
			ps.Reset(make([]byte, 64))
			ps.Uint64(uint64(1<<40 | i + 1))
			ps.String("kv/")
			h := wire.Header{Flags: wire.FlagRequest, CallNo: registry.CallSubscribe, CallID: uint64(i+1) << 20,
				Incarnation: 1, Budget: 1_000_000, Stamp: uint32(time.Now().UnixMilli())}
			n, e := codec.EncodeParams(dg, &h, &ps)
			if e != wire.OK {
				t.Fatal(e)
			}
			victim.Send(dg[:n], ep.Addr())
			sent += n
		}
		cl := newClient(t, s.Listen(7, keyed), ep.Addr())
		if _, err := cl.Put(rfctest.Context(t, time.Second), "kv/x", make([]byte, 1000), 0); err != nil {
			t.Fatalf("Put: %v", err)
		}
		time.Sleep(3 * DefaultStreamIdle)
		victim.Close()
		recv, dgs := 0, 0
		for n := range got {
			recv += n
			dgs++
		}
		t.Logf("%d bytes sent in the victim's name drew %d datagrams, %d bytes, to it", sent, dgs, recv)
		if recv > rfc.AmplifyFactor*sent {
			t.Fatalf("%d bytes sent in the victim's name drew %d datagrams, %d bytes, to it: %.1f times",
				sent, dgs, recv, float64(recv)/float64(sent))
		}
	})
}

// TestWatchProvesStream: a client's Watch echoes its stream's cookie as
// soon as it has subscribed, so the center pushes it the changes made
// after its listing: they arrive as pushes, not by a resynchronization.
func TestWatchProvesStream(t *testing.T) {
	rfctest.InSim(t, func(t *testing.T, s *rfctest.Sim) {
		ep := s.Listen(100, nil)
		c, err := StartCenter(ep, testCenterConfig(t.TempDir(), 0, netip.AddrPort{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cl := newClient(t, s.Listen(7, nil), ep.Addr())
		pushed := make(chan string, 16)
		w, err := cl.Watch([]string{"kv/"}, func(ch client.Change) {
			if !ch.Resync {
				pushed <- ch.Key
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		for i := 0; !w.Synced(); i++ {
			if i == 500 {
				t.Fatal("watch not synced")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := cl.Put(rfctest.Context(t, time.Second), "y", []byte("v"), 0); err != nil {
			t.Fatalf("Put: %v", err)
		}
		select {
		case k := <-pushed:
			if k != "kv/y" {
				t.Fatalf("pushed %q, want kv/y", k)
			}
		case <-time.After(time.Second):
			t.Fatalf("kv/y not pushed; watch %+v, center pushes %d", w.Stats(), c.Stats().Pushes)
		}
		if st := w.Stats(); st.Pushes == 0 || st.Resyncs != 1 {
			t.Fatalf("watch %+v: want pushes and one resynchronization", st)
		}
	})
}
