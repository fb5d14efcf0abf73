// Package registrytest holds the registry test support that tests outside
// node/registry use too (the campaign's, the simulation's) and the
// benchmark harness: the flood of push streams an attacker opens at a
// center, the waits for a set of agents to sync and for a key to reach
// every agent's map, and the timing of one registration. The registry's
// own tests find the rest of their support in internal/regtest.
package registrytest

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/node/registry"
	"fastcall/wire"
)

// SubscribeFlood opens push streams at center the way an attacker does:
// from ports UDP sockets on ip, perPort subscriptions each, on a prefix
// that never matches, one at a time, never renewed. The requests carry
// the keyed tag of key, or a checksum when key is nil. It returns how many
// the center granted. The sockets stay open until the test ends, so that
// every subscription of one socket comes from one port and no port is
// used twice.
func SubscribeFlood(t testing.TB, center netip.AddrPort, ip string, key []byte, ports, perPort int) int {
	t.Helper()
	codec, err := wire.NewCodec(0, key)
	if err != nil {
		t.Fatal(err)
	}
	dg := make([]byte, 1400)
	buf := make([]byte, 1500)
	seg := make([]byte, 64)
	var pk wire.Packet
	granted := 0
	for i := 0; i < ports; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		for j := 0; j < perPort; j++ {
			var ps wire.Params
			ps.Reset(seg)
			ps.Uint64(uint64(1<<40 | i*perPort + j + 1))
			ps.String("nomatch/")
			h := wire.Header{Flags: wire.FlagRequest, CallNo: registry.CallSubscribe, Src: uint32(5000 + i), CallID: uint64(j+1) << 20,
				Incarnation: 1, Budget: 1_000_000, Stamp: uint32(time.Now().UnixMilli())}
			n, e := codec.EncodeParams(dg, &h, &ps)
			if e != wire.OK {
				t.Fatal(e)
			}
			if _, err := c.WriteToUDPAddrPort(dg[:n], center); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			m, _, err := c.ReadFromUDPAddrPort(buf)
			if err == nil && codec.Decode(&pk, buf[:m]) == wire.ReasonNone && pk.Errno == wire.OK {
				granted++
			}
		}
	}
	return granted
}
