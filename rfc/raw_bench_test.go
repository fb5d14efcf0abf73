package rfc

import (
	"net"
	"net/netip"
	"testing"
)

// rawEchoServer is the floor: one goroutine echoing datagrams.
func rawEchoServer(tb testing.TB) (netip.AddrPort, func()) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, a, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], a)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), func() { c.Close() }
}

func benchRaw(b *testing.B, callers int) {
	addr, stop := rawEchoServer(b)
	defer stop()
	b.ReportAllocs()
	runCallers(b, callers, func(per int) {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		out := make([]byte, 64+56)
		in := make([]byte, 2048)
		for j := 0; j < per; j++ {
			c.Write(out)
			if _, err := c.Read(in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRawUDPEcho(b *testing.B)    { benchRaw(b, 1) }
func BenchmarkRawUDPEchox32(b *testing.B) { benchRaw(b, 32) }

// BenchmarkRawUDPEchoHandoff is the floor plus the one structural cost of
// a shared socket: a reader goroutine receives each reply and hands it to
// the parked caller over a channel. The difference to BenchmarkRawUDPEcho
// is the price of that hand-off on this machine.
func BenchmarkRawUDPEchoHandoff(b *testing.B) {
	addr, stop := rawEchoServer(b)
	defer stop()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ch := make(chan struct{}, 1)
	go func() {
		in := make([]byte, 2048)
		for {
			if _, err := c.Read(in); err != nil {
				return
			}
			ch <- struct{}{}
		}
	}()
	out := make([]byte, 64+56)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(out)
		<-ch
	}
}
