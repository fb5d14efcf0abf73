package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"fastcall/node/heartbeat"
	"fastcall/rfc/simnet"
	"fastcall/wire"
)

// TestSimMasterWorker is the master/worker scenario on the heartbeat
// world: member 0 is a master that starts tasks on the others, which run
// them step by step in virtual time. Invariants: no task runs after its
// master ended it (the master's task ended with an error, or the master
// crashed), beyond the time the worker needs to learn it: the detection
// bound, one interval, the longest link delay and one step; a task that
// succeeds has its own result (the worker echoes the task's payload), not
// that of another task, of an earlier master process or not.
func TestSimMasterWorker(t *testing.T) { runSeeds(t, "MasterWorker", runMasterWorker) }

// mwStep is the time a task step takes.
const mwStep = 20 * time.Millisecond

type mwWorld struct {
	hb *hbWorld
	mu struct {
		sync.Mutex
		master *heartbeat.Master
		gen    uint64                   // master incarnations started
		ended  map[uint64]time.Duration // task token -> when the master ended it
		crash  map[uint64]time.Duration // master generation -> when it crashed
	}
}

func runMasterWorker(t *testing.T, seed uint64, chk *checker) {
	hw := &hbWorld{t: t, chk: chk, log: newFaultLog()}
	w := &mwWorld{hb: hw}
	w.mu.ended = map[uint64]time.Duration{}
	w.mu.crash = map[uint64]time.Duration{}
	hw.roles = w.roles
	hw.run(seed, w.load)
}

// roles makes member 0 the master and the others workers.
func (w *mwWorld) roles(i int, svc *heartbeat.Service) func() {
	if i == 0 {
		m, err := heartbeat.NewMaster(svc, heartbeat.DefaultMasterConfig())
		if err != nil {
			w.hb.t.Fatal(err)
		}
		w.mu.Lock()
		w.mu.master = m
		w.mu.gen++
		gen := w.mu.gen
		w.mu.Unlock()
		return func() {
			w.mu.Lock()
			w.mu.master = nil
			w.mu.crash[gen] = w.hb.chk.tr.Since()
			w.mu.Unlock()
			w.hb.chk.tr.Add("master-stop", w.hb.addrs[0], noAddr, fmt.Sprintf("gen=%d", gen))
			m.Close()
		}
	}
	wk, err := heartbeat.NewWorker(svc, heartbeat.DefaultWorkerConfig(), func(ctx context.Context, ti *heartbeat.TaskInfo) ([]byte, wire.Errno) {
		return w.task(ctx, i, ti)
	})
	if err != nil {
		w.hb.t.Fatal(err)
	}
	return wk.Close
}

// lag is how long a worker may take to learn that its master ended a
// task.
func (w *mwWorld) lag() time.Duration {
	return w.hb.bound + w.hb.hcfg.Interval + hbMaxDelay + mwStep
}

// task runs the steps of one task; before each step it checks that the
// master has not ended the task longer than lag ago.
func (w *mwWorld) task(ctx context.Context, i int, ti *heartbeat.TaskInfo) ([]byte, wire.Errno) {
	if len(ti.Payload) != 16 {
		return nil, wire.EINVAL
	}
	gen, tok := binary.BigEndian.Uint64(ti.Payload), binary.BigEndian.Uint64(ti.Payload[8:])
	steps := 1 + int(tok%50)
	for k := 0; k < steps; k++ {
		select {
		case <-ctx.Done():
			return nil, wire.ECANCELED
		case <-time.After(mwStep):
		}
		now := w.hb.chk.tr.Since()
		w.mu.Lock()
		ended, eok := w.mu.ended[tok]
		crashed, cok := w.mu.crash[gen]
		w.mu.Unlock()
		switch {
		case eok && now > ended+w.lag():
			w.hb.chk.failf("task tok=%x on %v ran a step at %v; its master ended it at %v", tok, w.hb.addrs[i], now, ended)
		case cok && now > crashed+w.lag():
			w.hb.chk.failf("task tok=%x on %v ran a step at %v; its master (gen %d) crashed at %v", tok, w.hb.addrs[i], now, gen, crashed)
		}
	}
	return ti.Payload, wire.OK
}

// load starts tasks from the current master on random workers until
// stop, and records when the master ends one with an error.
func (w *mwWorld) load(stop <-chan struct{}, rnd *simnet.Rand) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for tok := uint64(1); ; tok++ {
		select {
		case <-stop:
			return
		case <-time.After(rnd.Dur(50 * time.Millisecond)):
		}
		w.mu.Lock()
		m, gen := w.mu.master, w.mu.gen
		w.mu.Unlock()
		if m == nil {
			continue
		}
		worker := w.hb.addrs[1+int(rnd.Below(uint64(len(w.hb.addrs)-1)))]
		var pl [16]byte
		binary.BigEndian.PutUint64(pl[:], gen)
		binary.BigEndian.PutUint64(pl[8:], tok)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		var tk *heartbeat.Task
		err := w.hb.chk.timed(ctx, fmt.Sprintf("master Start tok=%x on %v", tok, worker), engineTick(w.hb.cfg), func() (err error) {
			tk, err = m.Start(ctx, worker, 1, pl[:])
			return err
		})
		cancel()
		w.hb.chk.tr.Add("task-start", w.hb.addrs[0], worker, fmt.Sprintf("tok=%x err=%v", tok, err))
		if err != nil {
			// The master gave the task up; the worker may have
			// accepted it all the same (the reply lost).
			w.mu.Lock()
			w.mu.ended[tok] = w.hb.chk.tr.Since()
			w.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-tk.Done():
			case <-stop:
				return
			}
			if err := tk.Err(); err != nil {
				w.mu.Lock()
				w.mu.ended[tok] = w.hb.chk.tr.Since()
				w.mu.Unlock()
				w.hb.chk.tr.Add("task-ended", w.hb.addrs[0], worker, fmt.Sprintf("tok=%x err=%v", tok, err))
			} else if res := tk.Result(); !bytes.Equal(res, pl[:]) {
				w.hb.chk.failf("task tok=%x (gen %d) on %v succeeded with the result %x of another task", tok, gen, worker, res)
			}
		}()
	}
}
