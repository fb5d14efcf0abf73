package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/rpc"
	"slices"
	"strings"
	"syscall"
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

// Names of the calls case's systems that its targets compare.
const (
	FastcallSystem     = "fastcall"
	DeadlineSystem     = "fastcall, deadline context per call"
	DeadlineLongSystem = "fastcall, one deadline context per caller"
	KeyedSystem        = "fastcall, authenticated (keyed)"
	RawChildSystem     = "raw UDP echo, server in a child process"
	FastcallChildSys   = "fastcall, server in a child process"
)

// Systems returns the call systems of the main module, floor first. The
// fastcall rows are the engine with context.Background in checksum mode,
// then as the services call it (a deadline context), as rfcd runs
// (authenticated), and across two processes beside the raw echo across
// two processes.
func Systems() []System {
	return []System{&rawUDP{}, &rawUDP{handoff: true}, &fastcallSys{},
		&fastcallSys{ctx: ctxPerCall}, &fastcallSys{ctx: ctxPerCaller}, &fastcallSys{keyed: true},
		&netRPC{}, &rawUDP{child: true}, &fastcallSys{child: true}}
}

// SystemKeys are short names of Systems' systems, in its order, by which a
// run picks some of them (fcbench -systems): their names hold commas.
var SystemKeys = []string{"raw", "raw-handoff", "fastcall", "deadline-call", "deadline-caller",
	"keyed", "netrpc", "raw-child", "fastcall-child"}

// SystemsOf returns the systems of Systems that keys name, in Systems'
// order, each once; an unknown key is an error that lists the known ones.
func SystemsOf(keys []string) ([]System, error) {
	all := Systems()
	pick := make([]bool, len(all))
	for _, k := range keys {
		i := slices.Index(SystemKeys, k)
		if i < 0 {
			return nil, fmt.Errorf("unknown system %q (%s)", k, strings.Join(SystemKeys, ", "))
		}
		pick[i] = true
	}
	var out []System
	for i, s := range all {
		if pick[i] {
			out = append(out, s)
		}
	}
	return out, nil
}

// rawUDP is the floor: a goroutine echoing datagrams, clients with
// connected sockets doing write then read. With handoff, each client
// socket has a reader goroutine that hands replies to the caller over a
// channel: the floor plus the one structural cost of a shared socket.
//
// With child, the echo server runs in a child process (this binary
// re-executed), and the client in this one.
type rawUDP struct {
	addr    *net.UDPAddr
	stop    func()
	pid     int // the server child's, when child
	handoff bool
	child   bool
}

func (s *rawUDP) Name() string {
	switch {
	case s.handoff:
		return "raw UDP + hand-off"
	case s.child:
		return RawChildSystem
	}
	return "raw UDP echo"
}

func (s *rawUDP) Start() error {
	a, stop, pid, err := startEcho(s.child, childRawEcho, startRawEcho)
	s.addr, s.stop, s.pid = net.UDPAddrFromAddrPort(a), stop, pid
	return err
}

// startEcho starts a system's echo server: in a child process running
// job (this binary re-executed) when child is set, else in this process
// by start. It returns the server's address, how to stop it, and the
// child's process id (0 in this process).
func startEcho(child bool, job string, start func() (netip.AddrPort, func(), error)) (netip.AddrPort, func(), int, error) {
	if !child {
		a, stop, err := start()
		return a, stop, 0, err
	}
	c, err := startServerChild(job, 1)
	if err != nil {
		return netip.AddrPort{}, nil, 0, err
	}
	return c.addrs[0], c.stop, c.cmd.Process.Pid, nil
}

// pinRound places a round of callers calling a server in child process
// pid (0: a server in this process) and returns what undoes it. A round
// with one caller runs with every thread of this process and of the child
// on one CPU: each call then wakes the other process on the CPU it runs
// on. Left to the scheduler, an idle machine can put the woken thread on
// the other, idle CPU, and on a virtual machine the wake-up of an idle
// virtual CPU costs tens of microseconds each way
// (bench/calls-context.md); it did so in some rounds and not in others,
// and for one system more often than for another. Rounds of more callers
// keep every CPU busy and run unpinned. Where pinning is not supported,
// rounds run unpinned.
func pinRound(pid, callers int) (unpin func(), err error) {
	if pid == 0 || callers != 1 {
		return func() {}, nil
	}
	unpin, err = pinTogether(pid)
	if err == syscall.ENOSYS {
		return func() {}, nil
	}
	return unpin, err
}

// pinClient places the round of a client just made (call, done, err from
// the system's client function) with pinRound; its done unpins the round
// after done.
func pinClient(pid, callers int, call func(int) bool, done func(), err error) (func(int) bool, func(), error) {
	if err != nil {
		return nil, nil, err
	}
	unpin, err := pinRound(pid, callers)
	if err != nil {
		done()
		return nil, nil, err
	}
	return call, func() { done(); unpin() }, nil
}

// startRawEcho starts the raw echo server on loopback.
func startRawEcho() (netip.AddrPort, func(), error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	go serveRawEcho(c)
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), func() { c.Close() }, nil
}

// serveRawEcho echoes every datagram on c until c is closed.
func serveRawEcho(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, a, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.WriteToUDPAddrPort(buf[:n], a)
	}
}

func (s *rawUDP) Client(callers, size int) (func(int) bool, func(), error) {
	call, done, err := s.client(callers, size)
	return pinClient(s.pid, callers, call, done, err)
}

// client is Client without the round's placement.
func (s *rawUDP) client(callers, size int) (func(int) bool, func(), error) {
	conns := make([]*net.UDPConn, callers)
	for i := range conns {
		c, err := net.DialUDP("udp4", nil, s.addr)
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

func (s *rawUDP) Stop() { s.stop() }

// How a fastcall client's callers make their contexts.
const (
	ctxBackground = iota // context.Background for every call
	ctxPerCall           // context.WithTimeout per call, cancelled after it, as the services do
	ctxPerCaller         // one context.WithTimeout per caller for the whole round
)

// callTimeout is the deadline of the bench's deadline contexts: the
// engine's default timeout, as a service would pick.
const callTimeout = 2 * time.Second

// benchKey is the cluster key of the authenticated rows.
var benchKey = []byte("fcbench cluster key, 32 bytes..")

// fastcallSys is fastcall's echo call (inline handler), in checksum mode
// unless keyed. With child, the server runs in a child process (this
// binary re-executed), and the client in this one.
type fastcallSys struct {
	addr  netip.AddrPort
	stop  func()
	pid   int  // the server child's, when child
	ctx   int  // ctxBackground, ctxPerCall or ctxPerCaller
	keyed bool // Config.Key on both ends
	child bool
}

func (s *fastcallSys) Name() string {
	switch {
	case s.ctx == ctxPerCall:
		return DeadlineSystem
	case s.ctx == ctxPerCaller:
		return DeadlineLongSystem
	case s.keyed:
		return KeyedSystem
	case s.child:
		return FastcallChildSys
	}
	return FastcallSystem
}

func (s *fastcallSys) Start() (err error) {
	s.addr, s.stop, s.pid, err = startEcho(s.child, childFastcall, func() (netip.AddrPort, func(), error) { return startFastcallEcho(s.keyed) })
	return err
}

// startFastcallEcho starts a fastcall server with the builtin echo call
// on loopback.
func startFastcallEcho(keyed bool) (netip.AddrPort, func(), error) {
	cfg := rfc.DefaultConfig()
	cfg.Logger = quiet()
	if keyed {
		cfg.Key = benchKey
	}
	ep, err := rfc.Listen(cfg)
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	if _, err := builtin.Register(ep); err != nil {
		ep.Close()
		return netip.AddrPort{}, nil, err
	}
	return ep.Addr(), func() { ep.Close() }, nil
}

func (s *fastcallSys) Client(callers, size int) (func(int) bool, func(), error) {
	call, done, err := s.clientTo(callers, size, s.addr)
	return pinClient(s.pid, callers, call, done, err)
}

// clientTo is Client sending to dst (the server, or a relay in front of it).
func (s *fastcallSys) clientTo(callers, size int, dst netip.AddrPort) (func(int) bool, func(), error) {
	cfg := rfc.DefaultConfig()
	cfg.Logger = quiet()
	if s.keyed {
		cfg.Key = benchKey
	}
	cli, err := rfc.Listen(cfg)
	if err != nil {
		return nil, nil, err
	}
	payload := make([]byte, size)
	ps := make([]wire.Params, callers)
	segs := make([][]byte, callers)
	reps := make([]rfc.Reply, callers)
	ctxs := make([]context.Context, callers)
	cancels := make([]context.CancelFunc, callers)
	for i := range segs {
		segs[i] = make([]byte, size+64)
		ctxs[i] = context.Background()
		if s.ctx == ctxPerCaller {
			// One context for every call of the round, as a
			// request-scoped context is.
			ctxs[i], cancels[i] = context.WithTimeout(context.Background(), time.Hour)
		}
	}
	perCall := s.ctx == ctxPerCall
	call := func(w int) bool {
		p := &ps[w]
		p.Reset(segs[w])
		p.Bytes(payload)
		ctx := ctxs[w]
		var cancel context.CancelFunc
		if perCall {
			ctx, cancel = context.WithTimeout(ctx, callTimeout)
		}
		err := cli.Call(ctx, dst, builtin.CallEcho, p, &reps[w])
		if cancel != nil {
			cancel()
		}
		return err == nil && len(reps[w].Param(0).Bytes()) == size
	}
	done := func() {
		cli.Close()
		for _, c := range cancels {
			if c != nil {
				c()
			}
		}
	}
	return call, done, nil
}

func (s *fastcallSys) Stop() { s.stop() }

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
