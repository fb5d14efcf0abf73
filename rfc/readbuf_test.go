package rfc

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readBufBurst is the burst TestReadBufferTakesBurst sends: the replies
// of a fan-out to a thousand peers.
const readBufBurst = 1000

// TestReadBufferTakesBurst sends a burst of datagrams to an endpoint
// whose reader has not started yet, as replies of a fan-out arrive while
// the reader is not scheduled, and requires that the socket kept every
// one: the endpoint reads them all once it starts.
func TestReadBufferTakesBurst(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max")
	}
	if max, _ := strconv.Atoi(strings.TrimSpace(string(b))); max < socketReadBuffer {
		t.Skipf("net.core.rmem_max %d is below the %d bytes asked for", max, socketReadBuffer)
	}
	cfg := DefaultConfig()
	ep, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ep.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	junk := make([]byte, 64) // no valid header: read, counted, dropped
	for i := 0; i < readBufBurst; i++ {
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	if err := ep.Start(); err != nil {
		t.Fatal(err)
	}
	var rx uint64
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if rx = ep.Stats().Rx; rx >= readBufBurst {
			break
		}
	}
	if rx != readBufBurst {
		t.Fatalf("the endpoint read %d of a burst of %d datagrams: the socket's receive buffer dropped the rest", rx, readBufBurst)
	}
}
