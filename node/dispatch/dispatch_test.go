package dispatch

import (
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// TestConflictingOperationsRefused: a second operation that conflicts
// with a running one is refused with ECONFLICT and sends nothing; one
// that does not conflict proceeds; once the first ends the resource is
// free again.
func TestConflictingOperationsRefused(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(3)
		d := newDispatcher(t, w.ep(1, nil), NewMemStore(0), nil)
		ctx := ctxFor(t, 10*time.Second)
		addrs := ts.addrs()

		first, err := d.Submit(ctx, opFor("db/t1", KindUpdate, workCall(300), addrs, 5*time.Second))
		if err != nil {
			t.Fatalf("first: %v", err)
		}
		synctest.Wait()
		if ts.runs.Load() != 3 {
			t.Fatalf("first op ran on %d targets", ts.runs.Load())
		}
		cases := []struct {
			name     string
			resource string
			kind     Kind
			want     wire.Errno
		}{
			{"update-same", "db/t1", KindUpdate, wire.ECONFLICT},
			{"delete-same", "db/t1", KindDelete, wire.ECONFLICT},
			{"read-same", "db/t1", KindRead, wire.OK},
			{"update-other", "db/t2", KindUpdate, wire.OK},
		}
		var ok []uint64
		for _, c := range cases {
			sent := d.Stats().Sent
			runs := ts.runs.Load()
			id, err := d.Submit(ctx, opFor(c.resource, c.kind, workCall(1), addrs, 5*time.Second))
			if got := errnoOf(err); got != c.want {
				t.Fatalf("%s: got %v, want %v", c.name, got, c.want)
			}
			if c.want != wire.OK {
				synctest.Wait() // all that the refusal led to has happened
				if d.Stats().Sent != sent || ts.runs.Load() != runs {
					t.Fatalf("%s: refused operation sent calls: sent %d->%d, runs %d->%d", c.name, sent, d.Stats().Sent, runs, ts.runs.Load())
				}
				continue
			}
			ok = append(ok, id)
		}
		for _, id := range append(ok, first) {
			st, err := d.Wait(ctx, id)
			if err != nil || st.State != StateDone || st.Failed != 0 || st.Done != 3 {
				t.Fatalf("op %d: %+v %v", id, st, err)
			}
		}
		if st := d.Stats(); st.Conflicts != 2 || st.Submitted != 3 {
			t.Fatalf("stats %+v", st)
		}
		// The marker is gone: a delete now proceeds.
		id, err := d.Submit(ctx, opFor("db/t1", KindDelete, workCall(1), addrs, time.Second))
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		if _, err := d.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.markers.store.Get(ctx, "dispatch/db/t1"); errnoOf(err) != wire.ENOENT {
			t.Fatalf("marker left behind: %v", err)
		}
	})
}

// TestOutcomes: dead, slow, failing, unreachable and healthy targets in
// one operation; each outcome is right and the operation ends by its
// deadline.
func TestOutcomes(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(8)
		ep := w.ep(1, nil)
		d := newDispatcher(t, ep, NewMemStore(0), nil)
		ctx := ctxFor(t, 10*time.Second)
		a := ts.addrs()
		// An address nobody listens on.
		goneAddr := w.addr()

		fast, slow := workCall(1), workCall(900)
		var fail Call
		fail.No = callFail
		type tgt struct {
			addr netip.AddrPort
			call Call
			want wire.Errno
		}
		plan := []tgt{
			{a[0], fast, wire.OK},
			{a[1], fast, wire.OK},
			{a[2], fail, errFail},
			{a[3], fail, errFail},
			{a[4], slow, wire.ETIMEDOUT},
			{a[5], fast, wire.ENODEAD}, // dead before Submit
			{a[6], slow, wire.ENODEAD}, // declared dead while its call is parked
			{a[7], fast, wire.OK},
			{goneAddr, fast, wire.ETIMEDOUT},
		}
		ep.MarkDead(a[5])
		deadline := 400 * time.Millisecond
		op := &Op{Resource: "svc/outcomes", Kind: KindUpdate, Deadline: deadline}
		for _, p := range plan {
			op.Targets = append(op.Targets, Target{Addr: p.addr, Call: p.call})
		}
		start := time.Now()
		id, err := d.Submit(ctx, op)
		if err != nil {
			t.Fatal(err)
		}
		// a[6]'s call is parked once its handler runs: then it is declared
		// dead.
		synctest.Wait()
		if ts.perEP[6].Load() != 1 {
			t.Fatal("the call to a[6] did not run")
		}
		ep.MarkDead(a[6])
		st, err := d.Wait(ctx, id)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		// Some targets time out: the operation ends at its deadline, not
		// before and not at the slow calls' end (the engine fails a call
		// within a tick of its deadline, the gatherer looks every
		// PollInterval).
		if took < deadline || took > deadline+ep.Config().MinRTO/4+DefaultPollInterval {
			t.Fatalf("operation took %v with a %v deadline", took, deadline)
		}
		if st.Done != len(plan) || st.Failed != 6 || st.State != StateDone {
			t.Fatalf("status %+v", st)
		}
		for i, p := range plan {
			o := st.Outcomes[i]
			if !o.Done || o.Errno != p.want || o.Addr != p.addr {
				t.Errorf("target %d (%v): %+v, want %v", i, p.addr, o, p.want)
			}
		}
	})
}

// TestThousandTargets: one operation to 1,000 distinct addresses; every
// target runs its call exactly once and every outcome is reported.
func TestThousandTargets(t *testing.T) {
	const n = 1000
	ts := startTargets(t, n)
	d := newDispatcher(t, newEP(t, 1, nil), NewMemStore(0), nil)
	ctx := ctxFor(t, 40*time.Second)
	op := opFor("svc/thousand", KindUpdate, Call{No: callIncr}, ts.addrs(), 20*time.Second)
	id, err := d.Submit(ctx, op)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != n || st.Failed != 0 || len(st.Outcomes) != n {
		t.Fatalf("done %d failed %d outcomes %d", st.Done, st.Failed, len(st.Outcomes))
	}
	if got := ts.runs.Load(); got != n {
		t.Fatalf("%d runs, want %d", got, n)
	}
	for i := range ts.perEP {
		if c := ts.perEP[i].Load(); c != 1 {
			t.Fatalf("target %d ran %d times", i, c)
		}
	}
	t.Logf("1000 targets: %v", st.Elapsed)
}

// TestQueueFullRefusesAndKeepsAccepted: with the endpoint's call slots
// taken, calls wait on the send queue; an operation that does not fit is
// refused with EBUSY at once, and every accepted call is sent and
// answered once slots free.
func TestQueueFullRefusesAndKeepsAccepted(t *testing.T) {
	ts := startTargets(t, 12)
	ep := newEP(t, 1, func(c *rfc.Config) { c.MaxPending = 2 })
	d := newDispatcher(t, ep, NewMemStore(0), func(c *Config) {
		c.QueueLen = 8
		c.MaxTargets = 8
		c.Senders = 1
		c.Batch = 1
	})
	ctx := ctxFor(t, 10*time.Second)
	a := ts.addrs()
	// The first operation's calls hold the endpoint's two call slots
	// until the test lets them go (in cleanup too, if it fails first).
	const callHold = wire.CallUserBase + 9
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	for _, ep := range ts.eps[0:2] {
		must(t, ep.Register(callHold, "hold", nil, 0, func(*rfc.Request, *wire.Params) wire.Errno {
			ts.runs.Add(1)
			select {
			case <-hold:
			case <-time.After(20 * time.Second):
			}
			return wire.OK
		}))
	}
	holdSlots, err := d.Submit(ctx, opFor("q/a", KindUpdate, CallOf(callHold, nil), a[0:2], 5*time.Second))
	must(t, err)
	if !waitFor(2*time.Second, func() bool { return ts.runs.Load() == 2 }) {
		t.Fatal("slots not taken")
	}
	b, err := d.Submit(ctx, opFor("q/b", KindUpdate, Call{No: callIncr}, a[2:8], 5*time.Second))
	must(t, err)
	if !waitFor(time.Second, func() bool { q, _ := d.queue.len(); return q == 5 }) {
		q, _ := d.queue.len()
		t.Fatalf("queue holds %d calls, want 5", q)
	}
	// Refused at once: the slots are held until release below, so a
	// Submit that waited for room would not return.
	if _, err := d.Submit(ctx, opFor("q/c", KindUpdate, Call{No: callIncr}, a[8:12], 5*time.Second)); errnoOf(err) != wire.EBUSY {
		t.Fatalf("over the bound: %v", err)
	}
	c, err := d.Submit(ctx, opFor("q/c", KindUpdate, Call{No: callIncr}, a[8:11], 5*time.Second))
	must(t, err)
	if q, _ := d.queue.len(); q != 8 {
		t.Fatalf("queue holds %d calls, want 8", q)
	}
	release()
	for _, id := range []uint64{holdSlots, b, c} {
		st, err := d.Wait(ctx, id)
		if err != nil || st.Failed != 0 {
			t.Fatalf("op %d: %+v %v", id, st, err)
		}
	}
	if got := ts.runs.Load(); got != 2+6+3 {
		t.Fatalf("%d runs, want 11", got)
	}
	if st := d.Stats(); st.SendBusy == 0 || st.Busy != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStatusRetention: finished operations are forgotten past
// MaxRetained and past Retention.
func TestStatusRetention(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		const retention = 300 * time.Millisecond
		ts := w.targets(1)
		d := newDispatcher(t, w.ep(1, nil), NewMemStore(0), func(c *Config) {
			c.MaxRetained = 2
			c.Retention = retention
		})
		ctx := ctxFor(t, 10*time.Second)
		var ids []uint64
		for i := 0; i < 3; i++ {
			id, err := d.Submit(ctx, opFor("ret", KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second))
			must(t, err)
			_, err = d.Wait(ctx, id)
			must(t, err)
			ids = append(ids, id)
		}
		ended := time.Now()
		if _, err := d.Status(ids[0]); errnoOf(err) != wire.ENOENT {
			t.Fatalf("oldest kept past MaxRetained: %v", err)
		}
		// Kept until Retention has passed since it ended, not longer.
		time.Sleep(retention - time.Millisecond)
		if _, err := d.Status(ids[2]); err != nil {
			t.Fatalf("forgotten %v after it ended, within Retention: %v", time.Since(ended), err)
		}
		time.Sleep(time.Millisecond)
		if _, err := d.Status(ids[2]); errnoOf(err) != wire.ENOENT {
			t.Fatalf("kept past Retention: %v", err)
		}
		if st := d.Stats(); st.Retained != 0 || st.Active != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestCloseEndsOperations: Close ends queued and in-flight calls with
// ECLOSED and refuses new operations; the marker of calls in flight
// stays to its expiry (TestCloseKeepsMarkerOfCallsInFlight).
func TestCloseEndsOperations(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(4)
		store := NewMemStore(0)
		d := newDispatcher(t, w.ep(1, nil), store, nil)
		ctx := ctxFor(t, 10*time.Second)
		id, err := d.Submit(ctx, opFor("close/x", KindDelete, workCall(700), ts.addrs(), 5*time.Second))
		must(t, err)
		synctest.Wait()
		if ts.runs.Load() != 4 {
			t.Fatalf("%d calls running, want 4", ts.runs.Load())
		}
		start := time.Now()
		must(t, d.Close())
		if took := time.Since(start); took != 0 {
			t.Fatalf("Close took %v", took)
		}
		st, err := d.Wait(ctx, id)
		if err != nil || st.State != StateDone || st.Done != 4 {
			t.Fatalf("%+v %v", st, err)
		}
		for _, o := range st.Outcomes {
			if o.Errno != wire.ECLOSED {
				t.Fatalf("outcome %+v", o)
			}
		}
		if store.Len() != 1 {
			t.Fatal("marker of calls still running at their targets released")
		}
		if _, err := d.Submit(ctx, opFor("close/y", KindRead, workCall(1), ts.addrs(), time.Second)); errnoOf(err) != wire.ECLOSED {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// TestCloseKeepsMarkerOfCallsInFlight: calls that Close ends while they
// are in flight may still run at their targets, so their operation's
// marker stays to its expiry, as a dead dispatcher's would; an operation
// whose calls Close ended unsent has its marker released. Close released
// both, and a conflicting update of the first resource was accepted while
// the first operation's four calls still ran.
func TestCloseKeepsMarkerOfCallsInFlight(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(4)
		store := NewMemStore(0)
		// Four call slots: the first operation's calls take them all and
		// the second's wait for one, unsent.
		ep := w.ep(1, func(c *rfc.Config) { c.MaxPending = 4 })
		d := newDispatcher(t, ep, store, func(c *Config) { c.Senders = 1 })
		ctx := ctxFor(t, time.Minute)
		const deadline = 5 * time.Second
		_, err := d.Submit(ctx, opFor("close/sent", KindUpdate, workCall(700), ts.addrs(), deadline))
		must(t, err)
		_, err = d.Submit(ctx, opFor("close/unsent", KindUpdate, workCall(700), ts.addrs(), deadline))
		must(t, err)
		synctest.Wait()
		if n := ts.runs.Load(); n != 4 {
			t.Fatalf("%d calls running, want 4", n)
		}
		must(t, d.Close())
		other := newDispatcher(t, w.ep(2, nil), store, nil)
		if _, err := other.Submit(ctx, opFor("close/sent", KindUpdate, workCall(1), ts.addrs(), time.Second)); errnoOf(err) != wire.ECONFLICT {
			t.Fatalf("update of a resource whose calls still run at its targets: %v, want ECONFLICT", err)
		}
		if _, _, err := store.Get(ctx, DefaultKeyPrefix+"close/unsent"); errnoOf(err) != wire.ENOENT {
			t.Fatalf("marker of the operation Close ended unsent: %v, want ENOENT (released)", err)
		}
		time.Sleep(deadline + DefaultMarkerTTL)
		if _, _, err := store.Get(ctx, DefaultKeyPrefix+"close/sent"); errnoOf(err) != wire.ENOENT {
			t.Fatalf("marker past its expiry: %v, want ENOENT", err)
		}
	})
}

// TestCloseSendsNoQueuedCall: the calls still queued when Close is called
// end with ECLOSED unsent. A sender that was taking work when Close came
// must not go on sending the queue: Close releases the operation's marker
// at once, so a call sent after it runs at its target with the resource
// unlocked. One operation of 4000 targets (addresses nobody listens on,
// so no call completes) is submitted and Close follows at once, eight
// times: sending 4000 calls takes far longer than Close takes to stop the
// senders, so a sender that heeds Close leaves most of them unsent.
func TestCloseSendsNoQueuedCall(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		const n, rounds = 4000, 8
		addrs := make([]netip.AddrPort, n)
		for i := range addrs {
			addrs[i] = w.addr()
		}
		ctx := ctxFor(t, 10*time.Second)
		for r := 0; r < rounds; r++ {
			ep := w.ep(uint32(1+r), func(c *rfc.Config) { c.MaxPending = n + 16 })
			d := newDispatcher(t, ep, NewMemStore(0), func(c *Config) { c.Senders = 1 })
			id, err := d.Submit(ctx, opFor("close/queued", KindUpdate, Call{No: callIncr}, addrs, 5*time.Second))
			must(t, err)
			must(t, d.Close())
			st, err := d.Wait(ctx, id)
			must(t, err)
			for _, o := range st.Outcomes {
				if !o.Done || o.Errno != wire.ECLOSED {
					t.Fatalf("round %d: outcome %+v, want ECLOSED", r, o)
				}
			}
			sent := d.Stats().Sent
			t.Logf("round %d: %d of %d calls sent before Close", r, sent, n)
			if sent == n {
				t.Fatalf("round %d: Close sent all %d queued calls before it ended them", r, n)
			}
		}
	})
}

// TestCallsAfterClose: once the dispatcher is closed, a remote SUBMIT is
// answered ECLOSED and sends nothing, while STATUS still answers for the
// operations it retains (a client polling with WaitRemote gets the
// outcome the operation ended with).
func TestCallsAfterClose(t *testing.T) {
	inSim(t, func(t *testing.T, w *simWorld) {
		ts := w.targets(2)
		srv := w.ep(1, nil)
		d := newDispatcher(t, srv, NewMemStore(0), func(c *Config) { c.RemoteTargets = ts.addrs() })
		cli := w.ep(2, nil)
		ctx := ctxFor(t, 10*time.Second)
		id, err := SubmitRemote(ctx, cli, srv.Addr(), opFor("after/close", KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second))
		must(t, err)
		_, err = d.Wait(ctx, id)
		must(t, err)
		must(t, d.Close())
		runs := ts.runs.Load()
		if _, err := SubmitRemote(ctx, cli, srv.Addr(), opFor("after/close2", KindUpdate, Call{No: callIncr}, ts.addrs(), time.Second)); errnoOf(err) != wire.ECLOSED {
			t.Fatalf("SUBMIT after Close: %v, want ECLOSED", err)
		}
		st, err := StatusRemote(ctx, cli, srv.Addr(), id)
		if err != nil || st.State != StateDone || st.Done != 2 || st.Failed != 0 {
			t.Fatalf("STATUS after Close: %+v %v", st, err)
		}
		if n := ts.runs.Load(); n != runs {
			t.Fatalf("%d calls ran after Close", n-runs)
		}
	})
}
