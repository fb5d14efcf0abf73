package rfc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/wire"
)

// CallFlags describe a registered call.
type CallFlags uint8

const (
	// Idempotent calls skip the duplicate-request cache: a
	// retransmission may run the handler again, or be answered EBUSY
	// when the queue is full. Use it for short calls; a long call should
	// stay in the cache, where a retransmission of a running call is
	// absorbed.
	Idempotent CallFlags = 1 << iota
	// OneWay calls get no reply, not even an error reply.
	OneWay
	// Inline handlers run on the reader goroutine, without a hand-off
	// to a worker. They must be short and must never block.
	Inline
	// Priority calls go to a separate queue served by a worker of their
	// own, ahead of ordinary calls (heartbeats use it).
	Priority
)

// Handler runs one call. It reads the request's parameters, appends its
// reply parameters to reply (a builder lent over the reply datagram) and
// returns OK or an error number. An error reply carries no parameters. A
// handler that panics is answered EFAULT and the endpoint stays up. The
// request and the builder are valid only during the call.
type Handler func(req *Request, reply *wire.Params) wire.Errno

// Request is a call as a handler sees it.
type Request struct {
	*wire.Packet
	From     netip.AddrPort
	Arrived  int64 // engine clock (Endpoint.Now) when the datagram was read
	Deadline int64 // engine clock when the caller gives up; 0 = none
	buf      []byte
}

// callEntry is one registered call number.
type callEntry struct {
	no     uint16
	name   string
	schema wire.Schema
	flags  CallFlags
	h      Handler
	dh     DeferredHandler // instead of h, for RegisterDeferred
}

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

	comb    combiner      // combined sends (CoalesceSends)
	queue   chan *request // ordinary requests for the workers
	prio    chan *request // Priority requests for the priority worker
	reqFree chan *request // free request buffers; bounds queued memory
	sendBuf sync.Pool     // *sendScratch for one-way sends and error replies

	deferred deferredPool // calls whose handlers reply later
	bell     bell         // wakes the only call in flight (bell.go)
	watch    cancelWatch  // callers' contexts that may end early (cancel.go)

	tick time.Duration // timer granularity: MinRTO/4, at least 100µs

	started  atomic.Bool
	draining atomic.Bool  // Shutdown: new requests are refused with ECLOSED
	busy     atomic.Int32 // requests taken by workers and not yet answered
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
	ep, err := Open(cfg)
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
	ep.pending.init(ep, cfg.MaxPending, cfg.MaxDatagram)
	ep.watch.init(cfg.MaxPending)
	ep.deferred.max = cfg.MaxPending
	ep.peers.init(cfg.MaxPeers, int64(cfg.InitialRTO), ep.Now)
	ep.dup.init(cfg.DupEntries, int64(cfg.DupAge), cfg.MaxDatagram, int64(cfg.MaxRTO)+2*int64(cfg.MaxAge))
	ep.timers.init(cfg.MaxPending)
	ep.tick = cfg.MinRTO / 4
	if ep.tick < 100*time.Microsecond {
		ep.tick = 100 * time.Microsecond
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
	if cfg.CoalesceSends {
		bc, err := ep.newBatchConn()
		if err != nil {
			ep.closeConn()
			return nil, err
		}
		ep.comb.init(bc, cfg.BatchSize, cfg.MaxDatagram)
	}
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
// answered or timeout passed. The endpoint can still make calls.
func (ep *Endpoint) Drain(timeout time.Duration) {
	ep.draining.Store(true)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ep.started.Load() && !ep.closed.Load() {
		if len(ep.queue) == 0 && len(ep.prio) == 0 && ep.busy.Load() == 0 {
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

// Register adds a call number. Registering a number twice, number 0, or
// a handler that is nil gives EINVAL; a number in the engine's own range
// (below 0x0100) is refused unless the engine registers it itself.
func (ep *Endpoint) Register(callNo uint16, name string, schema wire.Schema, flags CallFlags, h Handler) error {
	if callNo < wire.CallHeartbeatBase {
		return wire.EINVAL
	}
	return ep.register(callNo, name, schema, flags, h)
}

func (ep *Endpoint) register(callNo uint16, name string, schema wire.Schema, flags CallFlags, h Handler) error {
	if h == nil {
		return wire.EINVAL
	}
	return ep.registerEntry(&callEntry{no: callNo, name: name, schema: schema, flags: flags, h: h})
}

// registerEntry adds ce to the call table, with its own copy of the
// schema.
func (ep *Endpoint) registerEntry(ce *callEntry) error {
	if ce.no == 0 || len(ce.schema) > wire.MaxParams {
		return wire.EINVAL
	}
	ce.schema = append(wire.Schema(nil), ce.schema...)
	ep.regMu.Lock()
	defer ep.regMu.Unlock()
	old := *ep.calls.Load()
	if _, ok := old[ce.no]; ok {
		return wire.EEXIST
	}
	m := make(map[uint16]*callEntry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[ce.no] = ce
	ep.calls.Store(&m)
	ep.NameCall(ce.no, ce.name)
	return nil
}

// NameCall records a name for a call number this endpoint calls but does
// not serve, so that statistics show it.
func (ep *Endpoint) NameCall(callNo uint16, name string) {
	for {
		old := ep.names.Load()
		if (*old)[callNo] == name {
			return
		}
		m := make(map[uint16]string, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
		m[callNo] = name
		if ep.names.CompareAndSwap(old, &m) {
			return
		}
	}
}

// CallName returns the registered or recorded name of a call number.
func (ep *Endpoint) CallName(callNo uint16) string { return (*ep.names.Load())[callNo] }

func (ep *Endpoint) lookupCall(callNo uint16) *callEntry { return (*ep.calls.Load())[callNo] }

// Reply holds a call's reply for Call. Its buffer is allocated on first
// use and reused; keep one Reply per caller to allocate nothing per call.
type Reply struct {
	wire.Packet
	buf []byte
}

func (r *Reply) set(p *Pending) {
	n := p.mu.pkt.Len
	if cap(r.buf) < n {
		r.buf = make([]byte, p.ep.cfg.MaxDatagram)
	}
	copy(r.buf[:n], p.mu.rep[:n])
	r.Packet = p.mu.pkt
	r.Packet.Rebase(r.buf[:n])
}

// Call sends a request to dst and parks until its reply, its deadline (the
// context's, or Config.DefaultTimeout), the context's cancellation
// (noticed within a timer tick, cancel.go), or the peer's declared death. It returns nil or an error number (wire.Errno):
// the callee's, or ETIMEDOUT, ENODEAD, ECANCELED, EBUSY (no free slot),
// EMSGSIZE, ECLOSED. On success the reply is copied into reply (which may
// be nil). A destination given as an IPv4-mapped IPv6 address is the IPv4
// peer, in this and every other method that takes one (peerAddr).
func (ep *Endpoint) Call(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params, reply *Reply) error {
	p, err := ep.start(ctx, dst, callNo, params, false, false)
	if err != nil {
		return err
	}
	return ep.wait(ctx, p, reply)
}

// wait parks on p until it completes or ctx ends, copies the reply and
// releases p. A context that ends by its deadline counts as ETIMEDOUT.
//
// The call's timer enforces the context's deadline (start), and the timer
// goroutine watches a context that may end earlier (cancel.go), so the
// caller parks on the bell or on p's channel alone, whatever its context,
// and is woken once. Before Start there is no timer goroutine: the caller
// then watches the context itself.
func (ep *Endpoint) wait(ctx context.Context, p *Pending, reply *Reply) error {
	if !ep.started.Load() {
		return ep.waitUnstarted(ctx, p, reply)
	}
	watched := false
	if mayEndEarly(ctx) {
		var id uint64
		if id, watched = ep.watchCancel(ctx, p); watched {
			if err := ctx.Err(); err != nil {
				ep.endWaiting(p, id, err)
			}
		}
	}
	ep.bellWait(p)
	<-p.done
	if watched {
		ep.unwatch(p)
	}
	return ep.finishWait(p, reply)
}

// waitUnstarted is wait on an endpoint whose goroutines have not started.
func (ep *Endpoint) waitUnstarted(ctx context.Context, p *Pending, reply *Reply) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.mu.Lock()
		id := p.mu.callID
		p.mu.Unlock()
		ep.endWaiting(p, id, ctx.Err())
		<-p.done
	}
	return ep.finishWait(p, reply)
}

// finishWait copies the reply of the completed call p and releases p.
func (ep *Endpoint) finishWait(p *Pending, reply *Reply) error {
	err := p.Err()
	if err == nil && reply != nil {
		reply.set(p)
	}
	p.Release()
	return err
}

// Go sends a request and returns at once with the pending call; wait on
// Done or Wait, read Reply, then Release. The deadline is the context's
// (or Config.DefaultTimeout); cancellation of ctx after Go returns is not
// watched — Release abandons a call.
func (ep *Endpoint) Go(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params) (*Pending, error) {
	return ep.start(ctx, dst, callNo, params, false, false)
}

// GoFunc sends a request like Go and, instead of a Pending to wait on,
// runs done once when the call completes: with its reply, or with
// ETIMEDOUT after timeout, ENODEAD, or ECLOSED. done runs on the
// goroutine that completes the call (a reader, the timer goroutine, or
// the one calling MarkDead or Close), so it must be short and must never
// block; it reads p.Err and p.Reply, which are valid only until it
// returns, and must not call Release: the engine releases the call after
// done. done may run before GoFunc returns. When GoFunc returns an error
// the call was not made and done never runs.
//
// A handler that defers its reply (RegisterDeferred) forwards with
// GoFunc and replies from done, so that no goroutine waits for the
// forwarded call.
func (ep *Endpoint) GoFunc(dst netip.AddrPort, callNo uint16, params *wire.Params, timeout time.Duration, done func(p *Pending)) error {
	if done == nil {
		return wire.EINVAL
	}
	_, err := ep.startCall(dst, callNo, params, timeout, false, false, done)
	return err
}

// Probe is Call for liveness checks: it goes out even to a peer marked
// dead, so that the heartbeat service can hear it again.
func (ep *Endpoint) Probe(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params, reply *Reply) error {
	p, err := ep.start(ctx, dst, callNo, params, false, true)
	if err != nil {
		return err
	}
	return ep.wait(ctx, p, reply)
}

// Send sends a one-way request: no reply, no retransmission, no
// guarantee of delivery. It fails only locally (ENODEAD, EMSGSIZE,
// ECLOSED). A call not registered Idempotent is dropped by the callee
// until this endpoint has heard the callee's incarnation.
func (ep *Endpoint) Send(dst netip.AddrPort, callNo uint16, params *wire.Params) error {
	if ep.closed.Load() {
		return wire.ECLOSED
	}
	dst = peerAddr(dst)
	peer := ep.peers.get(dst)
	if PeerState(peer.state.Load()) == PeerDead {
		return wire.ENODEAD
	}
	s := ep.sendBuf.Get().(*sendScratch)
	defer ep.sendBuf.Put(s)
	h := wire.Header{Flags: wire.FlagRequest | wire.FlagOneWay, CallNo: callNo, Src: ep.id, Dst: peer.node.Load(),
		CallID: ep.seq.Add(1) << slotBits, Incarnation: ep.inc.Load(), PeerInc: peer.incarn.Load(), Stamp: ep.stamp()}
	n, e := ep.codecOf(&s.codec).EncodeParams(s.buf, &h, params)
	if e != wire.OK {
		return e
	}
	ep.stats.callOut(callNo).calls.Add(1)
	ep.writeTo(s.buf[:n], dst)
	return nil
}

// stamp returns the header's clock field.
func (ep *Endpoint) stamp() uint32 { return uint32(time.Now().UnixMilli()) }

func (ep *Endpoint) writeTo(b []byte, dst netip.AddrPort) {
	var err error
	if ep.tr != nil {
		err = ep.tr.Send(b, dst)
	} else {
		_, err = ep.conn.WriteToUDPAddrPort(b, dst)
	}
	if err != nil {
		ep.stats.sendErrs.Add(1)
		return
	}
	ep.stats.tx.Add(1)
}

// start takes a slot, encodes and sends the request, and arms its timer.
// The deadline is the context's, or Config.DefaultTimeout.
func (ep *Endpoint) start(ctx context.Context, dst netip.AddrPort, callNo uint16, params *wire.Params, oneway, probe bool) (*Pending, error) {
	if err := ctx.Err(); err != nil && !ep.closed.Load() {
		return nil, wire.ECANCELED
	}
	timeout := ep.cfg.DefaultTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return ep.startCall(dst, callNo, params, timeout, oneway, probe, nil)
}

// startCall is start with the time the call may take, and the completion
// function of a GoFunc call (nil otherwise).
func (ep *Endpoint) startCall(dst netip.AddrPort, callNo uint16, params *wire.Params, timeout time.Duration, oneway, probe bool, fn func(*Pending)) (*Pending, error) {
	if ep.closed.Load() {
		return nil, wire.ECLOSED
	}
	dst = peerAddr(dst)
	peer := ep.peers.get(dst)
	if !probe && PeerState(peer.state.Load()) == PeerDead {
		ep.stats.callOut(callNo).errs.add(wire.ENODEAD)
		return nil, wire.ENODEAD
	}
	if timeout <= 0 {
		return nil, wire.ETIMEDOUT
	}
	now := ep.Now()
	deadline := clockAfter(now, timeout)
	p := ep.pending.get()
	if p == nil {
		ep.stats.busy.Add(1)
		return nil, wire.EBUSY
	}
	p.mu.Lock()
	if p.mu.req == nil {
		p.mu.req = make([]byte, ep.cfg.MaxDatagram)
		p.mu.rep = make([]byte, ep.cfg.MaxDatagram)
	}
	id := ep.seq.Add(1)<<slotBits | uint64(p.idx)
	h := wire.Header{Flags: wire.FlagRequest, CallNo: callNo, Src: ep.id, Dst: peer.node.Load(), CallID: id,
		Incarnation: ep.inc.Load(), PeerInc: peer.incarn.Load(), Budget: budgetUs(deadline - now), Stamp: ep.stamp()}
	n, e := ep.codecOf(&p.mu.codec).EncodeParams(p.mu.req, &h, params)
	if e == wire.OK && ep.closed.Load() {
		// Close sets closed before it sweeps the slots under their
		// locks: either its sweep of this slot comes after this
		// unlock and finds the call waiting, or closed shows here.
		e = wire.ECLOSED
	}
	if e != wire.OK {
		p.mu.Unlock()
		ep.pending.put(p.idx)
		return nil, e
	}
	p.mu.state = slotWaiting
	p.fin.Store(false)
	p.mu.bell = false
	p.mu.callID = id
	p.mu.callNo = callNo
	p.mu.peer = peer
	p.mu.dst = dst
	p.mu.oneway = oneway
	p.mu.sentAt = now
	p.mu.deadline = deadline
	p.mu.rto = peer.rto()
	p.mu.retrans = 0
	p.mu.reqLen = n
	p.mu.err = wire.OK
	p.mu.fn = fn
	at := now + p.mu.rto
	if at > deadline {
		at = deadline
	}
	queued, combine := false, false
	if ep.cfg.CoalesceSends {
		queued, combine = ep.comb.enqueue(timerEntry{id: id, idx: p.idx})
	}
	// A caller that waits for its call (Call, Go) sends after unlocking
	// it: the reply may come back while the send is still in the kernel,
	// and the reader delivering it must not wait for the lock meanwhile.
	// Nothing else writes the request before the timer is pushed below,
	// and the slot is released only by this goroutine or after it. A
	// GoFunc call's slot is released by whoever completes it, perhaps
	// during the send, so its request goes out under the lock.
	var after []byte
	if !queued {
		if fn == nil {
			after = p.mu.req[:n]
		} else {
			ep.writeTo(p.mu.req[:n], dst)
		}
	}
	p.mu.Unlock()
	if after != nil {
		ep.writeTo(after, dst)
	}
	ep.stats.callOut(callNo).calls.Add(1)
	ep.timers.push(timerEntry{at: at, id: id, idx: p.idx})
	if combine {
		ep.combine()
	}
	return p, nil
}

// sendBudgetLocked restamps the request of p with its remaining budget and
// sends it again.
func (ep *Endpoint) sendBudgetLocked(p *Pending, now int64) {
	b := p.mu.req[:p.mu.reqLen]
	ep.codecOf(&p.mu.codec).Restamp(b, budgetUs(p.mu.deadline-now), ep.stamp(), true)
	ep.writeTo(b, p.mu.dst)
}

// clockAfter returns the engine clock time d after now, saturated at the
// largest clock value: a timeout too long to represent is no deadline in
// practice, never a deadline in the past.
func clockAfter(now int64, d time.Duration) int64 {
	if int64(d) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(d)
}

// maxBudget is the longest time, in engine-clock nanoseconds, the budget
// field carries (2^32-1 µs): budgetUs saturates there, and a caller sends
// no copy of a call later than this after its first send (expire).
const maxBudget = int64(1<<32-1) * 1000

func budgetUs(ns int64) uint32 {
	us := ns / 1000
	if us < 1 {
		return 1
	}
	if us > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(us)
}
