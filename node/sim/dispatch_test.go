package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"fastcall/node/dispatch"
	"fastcall/rfc"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// TestSimDispatch is the dispatch scenario: two dispatchers sharing one
// marker store (a dispatch.MemStore outside the simulated network, as a
// store every dispatcher reaches), three agents answering the
// operations' calls, and two submitters sending remote SUBMITs (update,
// delete or read of a few resources) to either dispatcher at random
// times, under the fault schedule (dispatchers and agents crash and
// restart; the store survives). Invariants: two conflicting operations
// never hold markers at once, seen from the store (no value the store
// accepts has two conflicting live holders) and from the dispatchers (no
// two conflicting operations not yet done at one instant); every
// accepted operation is done, with its status, by its deadline plus the
// marker TTL.
func TestSimDispatch(t *testing.T) { runSeeds(t, "Dispatch", runDispatch) }

const (
	callDispWork = wire.CallUserBase + 20 // the operations' call at the agents
	dispRes      = 3                      // resources the submitters share
	dispTTL      = 2 * time.Second        // dispatch Config.MarkerTTL
	dispMaxDl    = 1500 * time.Millisecond
	dispSample   = 5 * time.Millisecond     // how often the dispatchers' view is checked
	dispPoll     = 999983 * time.Nanosecond // dispatch Config.PollInterval (prime)
)

// Roles of the dispatch scenario's nodes, by index.
const (
	dispD0 = iota
	dispD1
	dispA0
	dispA1
	dispA2
	dispS0
	dispS1
	dispNodes
)

// dispOp is an operation a submitter saw accepted.
type dispOp struct {
	d, gen   int // dispatcher index and its incarnation
	id       uint64
	res      string
	kind     dispatch.Kind
	deadline time.Duration
	at       time.Duration // trace time of the SUBMIT
	done     bool          // seen done by the sampler
}

type dispWorld struct {
	t     *testing.T
	net   *simnet.Network
	chk   *checker
	cfg   rfc.Config
	store *dispStore
	addrs []netip.AddrPort
	eps   []*rfc.Endpoint
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    struct {
		sync.Mutex
		ds  [2][]*dispatch.Dispatcher // every incarnation, by generation
		up  [2]bool
		ops []*dispOp
	}
}

// dispStore is the shared marker store; it checks every value it
// accepts: the live holders of one marker never conflict.
type dispStore struct {
	*dispatch.MemStore
	chk *checker
	mu  sync.Mutex // orders the checks with the writes
}

// CAS implements dispatch.MarkerStore and checks the value written.
func (s *dispStore) CAS(ctx context.Context, key string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.MemStore.CAS(ctx, key, expect, value, ttl)
	if err == nil {
		s.checkMarker(key, value)
	}
	return v, err
}

// Marker value layout, as docs/DISPATCH.md ("Marker format") states it.
const (
	dmHdr    = 2
	dmHolder = 25
	dmKind   = 0
	dmInst   = 1
	dmOp     = 9
	dmExpiry = 17
)

// checkMarker fails when value names two live holders whose kinds
// conflict.
func (s *dispStore) checkMarker(key string, value []byte) {
	if len(value) < dmHdr {
		s.chk.failf("marker %s: %d bytes", key, len(value))
		return
	}
	n := int(value[1])
	if len(value) != dmHdr+n*dmHolder {
		s.chk.failf("marker %s: %d bytes for %d holders", key, len(value), n)
		return
	}
	now := time.Now().UnixMilli()
	type h struct {
		kind     dispatch.Kind
		inst, op uint64
	}
	var live []h
	for i := 0; i < n; i++ {
		b := value[dmHdr+i*dmHolder:]
		if int64(binary.BigEndian.Uint64(b[dmExpiry:])) <= now {
			continue
		}
		live = append(live, h{dispatch.Kind(b[dmKind]), binary.BigEndian.Uint64(b[dmInst:]), binary.BigEndian.Uint64(b[dmOp:])})
	}
	s.chk.tr.Add("marker", noAddr, noAddr, fmt.Sprintf("key=%s live=%d", key, len(live)))
	for i := range live {
		for j := i + 1; j < len(live); j++ {
			if dispatch.Conflicts(live[i].kind, live[j].kind) {
				s.chk.failf("marker %s holds conflicting live holders %v (op %x/%d) and %v (op %x/%d)",
					key, live[i].kind, live[i].inst, live[i].op, live[j].kind, live[j].inst, live[j].op)
			}
		}
	}
}

func runDispatch(t *testing.T, seed uint64, chk *checker) {
	rnd := simnet.NewRand(seed)
	w := &dispWorld{t: t, chk: chk, stop: make(chan struct{})}
	w.store = &dispStore{MemStore: dispatch.NewMemStore(0), chk: chk}
	w.net = simnet.New(seed, calm(), chk.tr)
	defer w.net.Close()
	w.cfg, w.addrs = crashNodes(dispNodes, 3, 7300)
	w.eps = make([]*rfc.Endpoint, dispNodes)
	chk.tr.Add("world", noAddr, noAddr, fmt.Sprintf("seed=%d", seed))
	for i := 0; i < dispNodes; i++ {
		w.start(i)
	}
	startClients(&w.wg, rnd, dispS0, dispS1, w.submitter)
	sampleStop := make(chan struct{})
	sampled := make(chan struct{})
	go w.sampler(sampleStop, sampled)
	runAnyFaults(w.net, chk, rnd.Fork(1), w.addrs[:dispS0], w.crash, w.start)
	close(w.stop)
	w.wg.Wait()
	// Every accepted operation ends by its deadline plus the marker TTL.
	time.Sleep(dispMaxDl + dispTTL + *flagQuiet)
	close(sampleStop)
	<-sampled
	w.checkDone()
	w.mu.Lock()
	t.Logf("dispatch seed %d: %d operations accepted, dispatcher incarnations %d and %d", seed, len(w.mu.ops), len(w.mu.ds[0]), len(w.mu.ds[1]))
	w.mu.Unlock()
	for i := range w.eps {
		w.crash(i)
	}
}

// start starts node i's endpoint and its role.
func (w *dispWorld) start(i int) {
	ep := openNode(w.t, w.net, w.cfg, uint32(i+1), w.addrs[i])
	switch i {
	case dispD0, dispD1:
		dc := dispatch.DefaultConfig()
		dc.MarkerTTL = dispTTL
		// An operation's deadline is a whole number of milliseconds
		// after the SUBMIT, and the gatherer takes its first call at
		// that instant: with a 1 ms poll its timer and the engine's
		// deadline would fire at one instant, and which ran first
		// would move the release by a poll. A poll of a prime number
		// of nanoseconds never meets a whole millisecond.
		dc.PollInterval = dispPoll
		dc.RemoteTargets = w.addrs[dispA0 : dispA2+1]
		dc.Logger = quietLogger
		d, err := dispatch.Start(ep, dc, w.store)
		if err != nil {
			w.t.Fatal(err)
		}
		w.mu.Lock()
		w.mu.ds[i] = append(w.mu.ds[i], d)
		w.mu.up[i] = true
		w.mu.Unlock()
	case dispA0, dispA1, dispA2:
		addr := w.addrs[i]
		err := ep.Register(callDispWork, "work", wire.Schema{wire.TypeUint64}, 0, func(req *rfc.Request, reply *wire.Params) wire.Errno {
			w.chk.tr.Add("work", addr, noAddr, fmt.Sprintf("tok=%x", req.Param(0).Uint64()))
			return wire.OK
		})
		if err != nil {
			w.t.Fatal(err)
		}
	}
	w.eps[i] = startNode(w.t, ep)
}

// crash stops node i: its endpoint first, as a process killed, then what
// ran on it.
func (w *dispWorld) crash(i int) {
	if !killNode(&w.eps[i]) {
		return
	}
	if i == dispD0 || i == dispD1 {
		w.mu.Lock()
		d := w.mu.ds[i][len(w.mu.ds[i])-1]
		w.mu.up[i] = false
		w.mu.Unlock()
		d.Close()
	}
}

// gen returns dispatcher i's current generation, -1 while it is down.
func (w *dispWorld) gen(i int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.mu.up[i] {
		return -1
	}
	return len(w.mu.ds[i]) - 1
}

// submitter submits random operations until the world stops and
// records those accepted by a dispatcher incarnation it can name.
func (w *dispWorld) submitter(i int, rnd *simnet.Rand) {
	kinds := []dispatch.Kind{dispatch.KindRead, dispatch.KindUpdate, dispatch.KindDelete}
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			return
		case <-time.After(rnd.Dur(100 * time.Millisecond)):
		}
		d := int(rnd.Below(2))
		op := &dispatch.Op{
			Resource: fmt.Sprintf("r%d", rnd.Below(dispRes)),
			Kind:     kinds[rnd.Below(3)],
			Deadline: 50*time.Millisecond + rnd.Dur(dispMaxDl-50*time.Millisecond),
		}
		op.Deadline = op.Deadline.Truncate(time.Millisecond)
		var p wire.Params
		p.Reset(make([]byte, 64))
		p.Uint64(uint64(i)<<32 | uint64(n))
		op.Call = dispatch.CallOf(callDispWork, &p)
		for a := dispA0; a <= dispA2; a++ {
			if a == dispA0 || rnd.Chance(0.5) {
				op.Targets = append(op.Targets, dispatch.Target{Addr: w.addrs[a]})
			}
		}
		g0 := w.gen(d)
		at := w.chk.tr.Since()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond+rnd.Dur(time.Second))
		var id uint64
		err := w.chk.timed(ctx, fmt.Sprintf("dispatch SubmitRemote n=%d from %v to %v", n, w.addrs[i], w.addrs[d]), engineTick(w.cfg), func() (err error) {
			id, err = dispatch.SubmitRemote(ctx, w.eps[i], w.addrs[d], op)
			return err
		})
		cancel()
		g1 := w.gen(d)
		w.chk.tr.Add("submit", w.addrs[i], w.addrs[d], fmt.Sprintf("n=%d res=%s kind=%v deadline=%v id=%d gen=%d/%d err=%v",
			n, op.Resource, op.Kind, op.Deadline, id, g0, g1, err))
		if err == nil && g0 >= 0 && g0 == g1 {
			w.mu.Lock()
			w.mu.ops = append(w.mu.ops, &dispOp{d: d, gen: g0, id: id, res: op.Resource, kind: op.Kind, deadline: op.Deadline, at: at})
			w.mu.Unlock()
		}
		if err != nil || !rnd.Chance(0.5) {
			continue
		}
		// A remote STATUS of the operation, for the parked-caller check.
		ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond+rnd.Dur(time.Second))
		var st dispatch.Status
		err = w.chk.timed(ctx, fmt.Sprintf("dispatch StatusRemote id=%d from %v to %v", id, w.addrs[i], w.addrs[d]), engineTick(w.cfg), func() (err error) {
			st, err = dispatch.StatusRemote(ctx, w.eps[i], w.addrs[d], id)
			return err
		})
		cancel()
		w.chk.tr.Add("status", w.addrs[i], w.addrs[d], fmt.Sprintf("n=%d id=%d state=%v err=%v", n, id, st.State, err))
	}
}

// sampler checks the dispatchers' view every dispSample: the accepted
// operations not yet done at one instant never conflict.
func (w *dispWorld) sampler(stop, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-time.After(dispSample):
		}
		w.mu.Lock()
		var active []*dispOp
		for _, o := range w.mu.ops {
			if o.done {
				continue
			}
			st, err := w.mu.ds[o.d][o.gen].Status(o.id)
			if err != nil {
				continue
			}
			if st.State == dispatch.StateDone {
				o.done = true
				continue
			}
			active = append(active, o)
		}
		w.mu.Unlock()
		for i := range active {
			for j := i + 1; j < len(active); j++ {
				a, b := active[i], active[j]
				if a.res == b.res && dispatch.Conflicts(a.kind, b.kind) {
					w.chk.failf("conflicting operations active at once on %s: %v (dispatcher %d gen %d id %d, submitted at %v) and %v (dispatcher %d gen %d id %d, submitted at %v)",
						a.res, a.kind, a.d, a.gen, a.id, a.at, b.kind, b.d, b.gen, b.id, b.at)
				}
			}
		}
	}
}

// checkDone requires every accepted operation done within its deadline
// plus the marker TTL.
func (w *dispWorld) checkDone() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.mu.ops {
		st, err := w.mu.ds[o.d][o.gen].Status(o.id)
		switch {
		case err != nil:
			w.chk.failf("operation %d of dispatcher %d gen %d (submitted at %v): status %v", o.id, o.d, o.gen, o.at, err)
		case st.State != dispatch.StateDone:
			w.chk.failf("operation %d of dispatcher %d gen %d (submitted at %v, deadline %v): %v after %v", o.id, o.d, o.gen, o.at, o.deadline, st.State, st.Elapsed)
		case st.Elapsed > o.deadline+dispTTL:
			w.chk.failf("operation %d of dispatcher %d gen %d (submitted at %v, deadline %v): done after %v", o.id, o.d, o.gen, o.at, o.deadline, st.Elapsed)
		}
	}
}
