package rfc

import (
	"bytes"
	"testing"
	"time"

	"fastcall/wire"
)

func TestCallRoundTrip(t *testing.T) {
	srv := newTestServer(t, nil)
	cli := newTestEndpoint(t, nil)
	var rep Reply
	err := cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), callAdd, params(func(p *wire.Params) { p.Int64(40); p.Int64(2) }), &rep)
	if err != nil || rep.Param(0).Int64() != 42 {
		t.Fatalf("add: %v %v", err, rep.Param(0).Int64())
	}
	for _, no := range []uint16{callEcho, callEchoW} {
		err = cli.Call(ctxTimeout(t, 2*time.Second), srv.Addr(), no, params(func(p *wire.Params) { p.Bytes([]byte("hello")) }), &rep)
		if err != nil || !bytes.Equal(rep.Param(0).Bytes(), []byte("hello")) {
			t.Fatalf("echo %d: %v", no, err)
		}
	}
}
