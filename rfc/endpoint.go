package rfc

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/wire"
)

// Endpoint is one node's UDP socket and everything that serves and makes
// calls through it. All methods are safe for concurrent use.
type Endpoint struct {
	cfg     Config
	id      uint32
	inc     atomic.Uint32
	incMu   sync.Mutex             // serializes SetIncarnation's writes to incUsed
	incUsed [incKept]atomic.Uint32 // incarnations this process had, newest at incNext-1
	incNext int                    // ring position of the next write (incMu)
	conn    *net.UDPConn           // the socket; nil on a Transport
	sw      *sockWriter            // single sends on conn; nil on a Transport
	tr      Transport              // the transport of OpenTransport; nil on a socket
	local   netip.AddrPort
	epoch   time.Time
	codec   *wire.Codec // template; each goroutine works with a clone
	log     *slog.Logger
	keyMu   sync.Mutex // serializes SetKeys
	keys    atomic.Pointer[keySet]
	errLim  errLimiter

	regMu  sync.Mutex                            // serializes Register
	calls  atomic.Pointer[map[uint16]*callEntry] // copy on write
	names  atomic.Pointer[map[uint16]string]     // names of calls made, for stats
	onPeer atomic.Pointer[[]func(PeerInfo)]      // membership listeners

	pending pendingTable
	seq     atomic.Uint64
	peers   peerTable
	dup     dupCache
	timers  timerHeap
	stats   engineStats

	queue   chan *request // ordinary requests for the workers
	prio    chan *request // Priority requests for the priority worker
	reqFree chan *request // free request buffers; bounds queued memory
	sendBuf sync.Pool     // *sendScratch for one-way sends and error replies

	deferred deferredPool // calls whose handlers reply later
	bell     bell         // wakes the only call in flight (bell.go)
	watch    cancelWatch  // callers' contexts that may end early (cancel.go)

	tick      time.Duration // timer granularity: MinRTO/4, at least 100µs
	pollEvery time.Duration // how often watched contexts are asked: MinRTO with an alarm, else tick (cancel.go)

	started  atomic.Bool
	draining atomic.Bool  // Shutdown: new requests are refused with ECLOSED
	busy     atomic.Int32 // requests past the draining check (receive.go) and not yet answered
	closed   atomic.Bool
	done     chan struct{}
	wg       sync.WaitGroup
}

// request is a queued call with its own copy of the datagram.
type request struct {
	Request
	pkt wire.Packet
	ce  *callEntry
	ent int32
	key dupKey
}

// sendScratch is a buffer and codec for a send outside any goroutine's
// own scratch.
type sendScratch struct {
	buf   []byte
	codec codecRef
}

// Listen opens the socket and starts the endpoint's goroutines.
func Listen(cfg Config) (*Endpoint, error) {
	return started(Open(cfg))
}

// started starts ep, just opened with err, and closes it if it does not
// start: one path from Open and OpenTransport to a running endpoint.
func started(ep *Endpoint, err error) (*Endpoint, error) {
	if err != nil {
		return nil, err
	}
	if err := ep.Start(); err != nil {
		ep.Close()
		return nil, err
	}
	return ep, nil
}

// Open opens the socket without starting any goroutine, so that calls can
// be registered before the first request is read: datagrams wait in the
// socket buffer until Start. Close an endpoint that is never started.
func Open(cfg Config) (*Endpoint, error) {
	codec, err := newCodec(cfg)
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, BadConfig("rfc", "Addr", cfg.Addr, err.Error())
	}
	network := "udp"
	if ua.IP != nil && ua.IP.To4() != nil {
		network = "udp4"
	}
	conn, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, err
	}
	growReadBuffer(conn)
	return open(cfg, codec, conn, nil)
}

// newCodec checks cfg and returns the codec template of an endpoint.
func newCodec(cfg Config) (*wire.Codec, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	codec, err := wire.NewCodec(cfg.MaxDatagram, cfg.Key)
	if err != nil {
		return nil, BadConfig("rfc", "Key", nil, err.Error())
	}
	if len(cfg.PrevKey) > 0 {
		if err := codec.SetKeys(cfg.Key, cfg.PrevKey); err != nil {
			return nil, BadConfig("rfc", "PrevKey", nil, err.Error())
		}
	}
	return codec, nil
}

// open builds the endpoint on its socket conn or its transport tr (one of
// the two is nil), with the codec template of a checked cfg.
func open(cfg Config, codec *wire.Codec, conn *net.UDPConn, tr Transport) (*Endpoint, error) {
	ep := &Endpoint{cfg: cfg, id: cfg.NodeID, conn: conn, tr: tr, epoch: time.Now(), codec: codec, done: make(chan struct{})}
	var inc uint32
	if tr != nil {
		ep.local = tr.LocalAddr()
		if s, ok := tr.(incarnationSource); ok {
			inc = s.FirstIncarnation()
		}
	} else {
		ep.local = conn.LocalAddr().(*net.UDPAddr).AddrPort()
		sw, err := newSockWriter(conn)
		if err != nil {
			conn.Close()
			return nil, err
		}
		ep.sw = sw
	}
	ep.log = cfg.Logger
	if ep.log == nil {
		ep.log = slog.Default()
	}
	if inc == 0 {
		var rb [4]byte
		_, _ = rand.Read(rb[:])
		inc = binary.BigEndian.Uint32(rb[:])
	}
	if inc == 0 {
		inc = 1
	}
	ep.inc.Store(inc)
	ep.incUsed[0].Store(inc)
	ep.incNext = 1
	// Call ids start at a random point, so that a process restarted on
	// the same address does not repeat its predecessor's ids: replies
	// name their call by id only, and a late or replayed reply to the
	// earlier process would complete the new one's call. 40 random bits
	// leave the counter (64 - slotBits bits) room for ever.
	var sb [8]byte
	_, _ = rand.Read(sb[:])
	ep.seq.Store(binary.BigEndian.Uint64(sb[:]) >> 24)
	calls := map[uint16]*callEntry{}
	ep.calls.Store(&calls)
	names := map[uint16]string{}
	ep.names.Store(&names)
	ep.pending.init(ep, cfg.MaxPending)
	ep.watch.init(cfg.MaxPending)
	ep.deferred.max = cfg.MaxPending
	ep.peers.init(cfg.MaxPeers, int64(cfg.InitialRTO), cfg.MaxAge, ep.Now)
	ep.dup.init(cfg.DupEntries, int64(cfg.DupAge), cfg.MaxDatagram, int64(cfg.MaxRTO)+2*int64(cfg.MaxAge))
	ep.timers.init(cfg.MaxPending)
	ep.timers.slots = ep.pending.slots
	if tr == nil {
		// Set here, before any call can push a timer: a service may
		// call between Open and Start (alarm.go). On a Transport the
		// timer goroutine sleeps on a runtime timer.
		ep.timers.alarm = newAlarm()
	}
	ep.tick = cfg.MinRTO / 4
	if ep.tick < 100*time.Microsecond {
		ep.tick = 100 * time.Microsecond
	}
	ep.pollEvery = ep.tick
	if ep.timers.alarm != nil {
		// A kick of an alarm is a system call; a channel's is not.
		ep.timers.slack = int64(ep.tick)
		// Pushes that arm the alarm at least MinRTO apart are
		// sparse: a reply before the entry's time sets the alarm
		// back (timerHeap.settled). Closer ones are a caller whose
		// goroutine lingers (timerHeap.linger).
		ep.timers.gap = int64(cfg.MinRTO)
		// Each wake-up of an alarm is a kernel timer and a thread
		// woken through the poller; a runtime timer's is not. Once per
		// MinRTO the goroutine wakes anyway while calls are made
		// (timerHeap.linger).
		ep.pollEvery = cfg.MinRTO
	}
	ep.queue = make(chan *request, cfg.QueueLen)
	ep.prio = make(chan *request, cfg.QueueLen)
	ep.reqFree = make(chan *request, cfg.QueueLen+cfg.Workers+1)
	for i := 0; i < cap(ep.reqFree); i++ {
		ep.reqFree <- &request{ent: -1}
	}
	ep.keys.Store(&keySet{key: cfg.Key, prev: cfg.PrevKey})
	ep.errLim.init(cfg.StrangerErrorRate)
	ep.sendBuf.New = func() any { return &sendScratch{buf: make([]byte, cfg.MaxDatagram)} }
	ep.registerBuiltins()
	return ep, nil
}

// Start starts the endpoint's goroutines; every long-lived goroutine of
// the endpoint starts here. Start may be called once.
func (ep *Endpoint) Start() error {
	if !ep.started.CompareAndSwap(false, true) {
		return wire.EINVAL
	}
	if ep.closed.Load() {
		return wire.ECLOSED
	}
	cfg := ep.cfg
	readers := make([]batchConn, cfg.Readers)
	for i := range readers {
		var err error
		if readers[i], err = ep.newBatchConn(); err != nil {
			return err
		}
	}
	if ep.tr == nil {
		// The bell parks a caller in the poller: a socket endpoint's
		// path only. On a Transport the bell stays off.
		ep.bell.init()
	}
	for i := range readers {
		ep.wg.Add(1)
		go ep.readLoop(readers[i])
	}
	for i := 0; i < cfg.Workers; i++ {
		ep.wg.Add(1)
		go ep.workLoop(ep.queue)
	}
	ep.wg.Add(2)
	go ep.workLoop(ep.prio)
	go ep.timerLoop()
	ep.log.Debug("rfc endpoint up", "addr", ep.local.String(), "node", ep.id, "incarnation", ep.Incarnation())
	return nil
}

// Close stops the endpoint: the socket closes, every parked caller returns
// ECLOSED at once, and every goroutine ends (a worker finishes the handler
// it is running first). Close waits for the goroutines and is idempotent.
func (ep *Endpoint) Close() error {
	if !ep.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(ep.done)
	err := ep.closeConn()
	for i := range ep.pending.slots {
		p := &ep.pending.slots[i]
		p.mu.Lock()
		if p.mu.state != slotWaiting {
			p.mu.Unlock()
			continue
		}
		fn := p.completeLocked(wire.ECLOSED)
		p.mu.Unlock()
		p.finish(fn)
	}
	ep.bell.close()
	if a := ep.timers.alarm; a != nil {
		a.close()
	}
	ep.wg.Wait()
	return err
}

// Shutdown stops taking calls and answers the ones in flight, then
// closes: from now on every new request is answered ECLOSED; requests
// already queued or running are finished and their replies sent, for at
// most timeout; then Close. Calls this endpoint makes are not waited for.
func (ep *Endpoint) Shutdown(timeout time.Duration) error {
	ep.Drain(timeout)
	return ep.Close()
}

// Drain is Shutdown without the Close: new requests are refused with
// ECLOSED from now on, and Drain returns once the requests in flight are
// answered or timeout passed. A request is in flight from the moment a
// reader accepts it (before it is queued, or while an Inline handler runs
// on the reader) until its reply is sent, a deferred one's by
// Deferred.Reply: once Drain returned before its timeout, no handler runs
// until the endpoint closes. The endpoint can still make calls.
func (ep *Endpoint) Drain(timeout time.Duration) {
	ep.draining.Store(true)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ep.started.Load() && !ep.closed.Load() {
		// busy counts the queued requests too.
		if ep.busy.Load() == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Started reports whether Start has run.
func (ep *Endpoint) Started() bool { return ep.started.Load() }

// Addr returns the local UDP address.
func (ep *Endpoint) Addr() netip.AddrPort { return ep.local }

// NodeID returns the node id.
func (ep *Endpoint) NodeID() uint32 { return ep.id }

// Incarnation returns the current incarnation number.
func (ep *Endpoint) Incarnation() uint32 { return ep.inc.Load() }

// SetIncarnation raises the incarnation (the heartbeat service does so to
// refute a suspicion). Lower values are ignored.
//
// Requests carry the caller's view of the callee's incarnation. A
// non-idempotent request that names no incarnation this process had (0,
// before the caller heard this process, included) may have been meant for
// an earlier process on this address, which may have run it: it is
// refused with ESTALE, never run a second time.
func (ep *Endpoint) SetIncarnation(v uint32) {
	ep.incMu.Lock()
	defer ep.incMu.Unlock()
	if v <= ep.inc.Load() {
		return
	}
	ep.incUsed[ep.incNext].Store(v)
	ep.incNext = (ep.incNext + 1) % incKept
	ep.inc.Store(v)
}

// incKept is how many incarnations of this process (the latest ones)
// requests may name. A refutation jumps to a value learnt from the
// cluster, which may lie above incarnations an earlier process on this
// address had: only values this process took are its own, never the
// range between its first and its current one.
const incKept = 8

// ownIncarnation reports whether v is one of the last incKept
// incarnations this process had.
func (ep *Endpoint) ownIncarnation(v uint32) bool {
	if v == 0 {
		return false
	}
	for i := range ep.incUsed {
		if ep.incUsed[i].Load() == v {
			return true
		}
	}
	return false
}

// Now returns the engine clock: monotonic nanoseconds since Listen.
func (ep *Endpoint) Now() int64 { return int64(time.Since(ep.epoch)) }

// Config returns the configuration the endpoint runs with.
func (ep *Endpoint) Config() Config { return ep.cfg }
