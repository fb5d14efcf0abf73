package rfc

import (
	"testing"

	"fastcall/wire"
)

// TestPadFor checks that the padding PadFor asks for is the least that
// lets an unauthenticated reply of the wanted size through ReplyRoom.
func TestPadFor(t *testing.T) {
	ep := &Endpoint{}
	ep.cfg.MaxDatagram = wire.MaxDatagram
	for _, reply := range []int{0, 1, 120, 1400, 1401, wire.MaxDatagram} {
		for reqLen := wire.HeaderSize; reqLen < 30000; reqLen += 97 {
			n := PadFor(reqLen, reply)
			if n < 0 {
				t.Fatalf("PadFor(%d, %d) = %d", reqLen, reply, n)
			}
			p := &wire.Packet{Len: reqLen + n}
			if room := ep.ReplyRoom(p); room < reply {
				t.Fatalf("PadFor(%d, %d) = %d: room %d", reqLen, reply, n, room)
			}
			if n > 0 {
				p.Len--
				if room := ep.ReplyRoom(p); room >= reply {
					t.Fatalf("PadFor(%d, %d) = %d is not the least", reqLen, reply, n)
				}
			}
			p.Flags = wire.FlagAuth
			if room := ep.ReplyRoom(p); room != wire.MaxDatagram {
				t.Fatalf("authenticated room %d", room)
			}
		}
	}
}

// TestAppendPad checks that a padded request of parameters lets a full
// datagram reply through, and that the padding parameter is always there.
func TestAppendPad(t *testing.T) {
	ep := &Endpoint{}
	ep.cfg.MaxDatagram = 1400
	buf := make([]byte, wire.MaxDatagram)
	for _, pre := range []int{0, 10, 500, 1000} {
		var ps wire.Params
		ps.Reset(buf)
		ps.Bytes(make([]byte, pre))
		AppendPad(&ps, 1400)
		if ps.Err() != wire.OK || ps.Count() != 2 {
			t.Fatalf("pre %d: err %v count %d", pre, ps.Err(), ps.Count())
		}
		p := &wire.Packet{Len: wire.HeaderSize + ps.Len()}
		if room := ep.ReplyRoom(p); room < 1400 {
			t.Fatalf("pre %d: room %d", pre, room)
		}
	}
}
