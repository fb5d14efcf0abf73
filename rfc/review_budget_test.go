package rfc

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"fastcall/wire"
)

// TestReviewNoResendPastBudget: the callee keeps what refuses a copy of a
// non-idempotent call (its cache entry, then its sender's floor) until the
// copy's arrival plus the budget it carries, and the budget field tops out
// at 2^32-1 µs. A caller whose deadline lies further must not send a copy
// later than that after its first send, or a copy arriving after the
// callee let the floor go would run again. The call still ends at its
// deadline.
func TestReviewNoResendPastBudget(t *testing.T) {
	silent, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dst := silent.LocalAddr().(*net.UDPAddr).AddrPort()
	cli := newTestEndpoint(t, func(c *Config) {
		// No real retransmission during the test: only the
		// expiries the test drives.
		c.MinRTO, c.InitialRTO, c.MaxRTO = time.Hour, time.Hour, time.Hour
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	pd, err := cli.Go(ctx, dst, callIncr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pd.Release()
	pd.mu.Lock()
	id, idx, sentAt, deadline := pd.mu.callID, pd.idx, pd.mu.sentAt, pd.mu.deadline
	pd.mu.Unlock()
	cli.expire(timerEntry{id: id, idx: idx}, sentAt+maxBudget/2)
	pd.mu.Lock()
	r := pd.mu.retrans
	pd.mu.Unlock()
	if r != 1 {
		t.Fatalf("retransmissions within the budget: %d, want 1", r)
	}
	cli.expire(timerEntry{id: id, idx: idx}, sentAt+maxBudget+1)
	pd.mu.Lock()
	r = pd.mu.retrans
	pd.mu.Unlock()
	if r != 1 {
		t.Errorf("a copy was sent %v after the first send, past the largest budget", time.Duration(maxBudget+1))
	}
	cli.expire(timerEntry{id: id, idx: idx}, deadline)
	select {
	case <-pd.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("call not ended at its deadline")
	}
	if err := pd.Err(); err != wire.ETIMEDOUT {
		t.Fatalf("call ended %v, want ETIMEDOUT", err)
	}
}
