package bench

import (
	"context"
	"net"
	"net/netip"
	"net/rpc"
	"time"

	"fastcall/node/builtin"
	"fastcall/rfc"
	"fastcall/wire"
)

// System is one implementation of the echo workload: a server, and a
// client whose call function sends size bytes and waits for them back.
type System interface {
	Name() string
	Start() error
	Client(callers, size int) (call func(w int) bool, done func(), err error)
	Stop()
}

// Systems returns the call systems of the main module, floor first.
func Systems() []System {
	return []System{&rawUDP{}, &rawUDP{handoff: true}, &fastcallSys{}, &netRPC{}}
}

// CoalesceSystems compares fastcall with and without client-side
// coalescing of concurrent callers' sends.
func CoalesceSystems() []System {
	return []System{&fastcallSys{}, &fastcallSys{combine: true}}
}

// rawUDP is the floor: a goroutine echoing datagrams, clients with
// connected sockets doing write then read. With handoff, each client
// socket has a reader goroutine that hands replies to the caller over a
// channel: the floor plus the one structural cost of a shared socket.
type rawUDP struct {
	conn    *net.UDPConn
	handoff bool
}

func (s *rawUDP) Name() string {
	if s.handoff {
		return "raw UDP + hand-off"
	}
	return "raw UDP echo"
}

func (s *rawUDP) Start() error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	s.conn = c
	go func() {
		buf := make([]byte, 65536)
		for {
			n, a, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], a)
		}
	}()
	return nil
}

func (s *rawUDP) Client(callers, size int) (func(int) bool, func(), error) {
	conns := make([]*net.UDPConn, callers)
	for i := range conns {
		c, err := net.DialUDP("udp4", nil, s.conn.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return nil, nil, err
		}
		conns[i] = c
	}
	out := make([][]byte, callers)
	in := make([][]byte, callers)
	for i := range out {
		// The same bytes a fastcall request of this size carries.
		out[i] = make([]byte, size+wire.HeaderSize+wire.ParamHdrSize)
		in[i] = make([]byte, 65536)
	}
	done := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	if s.handoff {
		chans := make([]chan int, callers)
		for i := range chans {
			chans[i] = make(chan int, 1)
			go func(i int) {
				for {
					n, err := conns[i].Read(in[i])
					if err != nil {
						close(chans[i])
						return
					}
					chans[i] <- n
				}
			}(i)
		}
		timers := make([]*time.Timer, callers)
		for i := range timers {
			timers[i] = time.NewTimer(time.Hour)
		}
		call := func(w int) bool {
			if _, err := conns[w].Write(out[w]); err != nil {
				return false
			}
			timers[w].Reset(time.Second)
			select {
			case n := <-chans[w]:
				return n == len(out[w])
			case <-timers[w].C:
				return false
			}
		}
		return call, done, nil
	}
	call := func(w int) bool {
		c := conns[w]
		if _, err := c.Write(out[w]); err != nil {
			return false
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(in[w])
		return err == nil && n == len(out[w])
	}
	return call, done, nil
}

func (s *rawUDP) Stop() { s.conn.Close() }

// fastcallSys is fastcall's echo call (inline handler, checksum mode).
type fastcallSys struct {
	srv     *rfc.Endpoint
	combine bool // Config.CoalesceSends: concurrent callers share sendmmsg rounds
}

func (s *fastcallSys) Name() string {
	if s.combine {
		return "fastcall, combined sends"
	}
	return "fastcall"
}

func (s *fastcallSys) Start() error {
	cfg := rfc.DefaultConfig()
	cfg.Logger = quiet()
	ep, err := rfc.Listen(cfg)
	if err != nil {
		return err
	}
	if _, err := builtin.Register(ep); err != nil {
		ep.Close()
		return err
	}
	s.srv = ep
	return nil
}

func (s *fastcallSys) Client(callers, size int) (func(int) bool, func(), error) {
	return s.clientTo(callers, size, s.srv.Addr())
}

// clientTo is Client sending to dst (the server, or a relay in front of it).
func (s *fastcallSys) clientTo(callers, size int, dst netip.AddrPort) (func(int) bool, func(), error) {
	cfg := rfc.DefaultConfig()
	cfg.Logger = quiet()
	cfg.CoalesceSends = s.combine
	cli, err := rfc.Listen(cfg)
	if err != nil {
		return nil, nil, err
	}
	payload := make([]byte, size)
	ps := make([]wire.Params, callers)
	segs := make([][]byte, callers)
	reps := make([]rfc.Reply, callers)
	for i := range segs {
		segs[i] = make([]byte, size+64)
	}
	ctx := context.Background()
	call := func(w int) bool {
		p := &ps[w]
		p.Reset(segs[w])
		p.Bytes(payload)
		if err := cli.Call(ctx, dst, builtin.CallEcho, p, &reps[w]); err != nil {
			return false
		}
		return len(reps[w].Param(0).Bytes()) == size
	}
	return call, func() { cli.Close() }, nil
}

func (s *fastcallSys) Stop() { s.srv.Close() }

// EchoService is the net/rpc echo service.
type EchoService struct{}

// Echo returns its argument.
func (EchoService) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

// netRPC is Go's net/rpc over TCP with one shared client connection, the
// package's intended use.
type netRPC struct {
	ln net.Listener
}

func (s *netRPC) Name() string { return "net/rpc TCP" }

func (s *netRPC) Start() error {
	srv := rpc.NewServer()
	if err := srv.Register(EchoService{}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.ln = ln
	go srv.Accept(ln)
	return nil
}

func (s *netRPC) Client(callers, size int) (func(int) bool, func(), error) {
	c, err := rpc.Dial("tcp4", s.ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	payload := make([]byte, size)
	replies := make([][]byte, callers)
	call := func(w int) bool {
		err := c.Call("EchoService.Echo", payload, &replies[w])
		return err == nil && len(replies[w]) == size
	}
	return call, func() { c.Close() }, nil
}

func (s *netRPC) Stop() { s.ln.Close() }
