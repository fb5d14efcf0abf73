package heartbeat

import (
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"fastcall/wire"
)

// idleWakesMax bounds the probe loop's wake-ups per Interval in an idle
// cluster: the schedule's ProbesPerInterval slots (DefaultProbes), the
// tick after each that finishes its probe, and as much again for the
// odd one (a reply later than a Tick, a slot boundary off the grid).
// A loop that ticked every Tick woke Interval/Tick (10) times.
const idleWakesMax = 2 * 2 * DefaultProbes

// TestIdleLoopSleeps: in a cluster where every member is alive and
// nothing changes, a member's probe loop sleeps between the events it
// has due instead of waking every Tick, and a planned sleep is no late
// tick: the local health stays 0 and no member is suspected. Run in
// virtual time for sixteen members probed by schedule and for two (a
// cluster probed whole, each member on its own cadence), at the default
// Interval. (Before, every loop woke every Tick: 10 times per Interval.)
func TestIdleLoopSleeps(t *testing.T) {
	for _, n := range []int{16, 2} {
		t.Run("n="+strconv.Itoa(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.Logger = quiet
				nodes := startMeshCluster(t, n, 1, cfg).nodes
				const warm, span = 10, 50 // Intervals
				time.Sleep(warm * cfg.Interval)
				synctest.Wait()
				before := make([]Stats, n)
				for i, nd := range nodes {
					before[i] = nd.svc.Stats()
				}
				time.Sleep(span * cfg.Interval)
				synctest.Wait()
				for i, nd := range nodes {
					st := nd.svc.Stats()
					wakes := float64(st.Wakes-before[i].Wakes) / span
					// Probed, or skipped as heard within the Interval.
					probes := float64(st.Probes+st.ProbesSkipped-before[i].Probes-before[i].ProbesSkipped) / span
					if probes < 0.5 {
						t.Fatalf("member %d probed %.2f members per Interval: the cluster did not run", i, probes)
					}
					if i == 0 {
						t.Logf("member 0: %.2f wake-ups and %.2f probes per Interval", wakes, probes)
					}
					if wakes > idleWakesMax {
						t.Errorf("member %d's probe loop woke %.2f times per Interval, idle (at most %d)", i, wakes, idleWakesMax)
					}
					if st.Health != 0 || st.Suspects != 0 || st.Deaths != 0 {
						t.Errorf("member %d: health %d, %d suspects, %d deaths in an idle cluster", i, st.Health, st.Suspects, st.Deaths)
					}
				}
			})
		})
	}
}

// TestIdleWorkerLeaseSleeps: a worker that holds no task does not wake
// its lease goroutine every Tick, and a task started on it afterwards
// still runs and is checked with its master. (Before, the lease
// goroutine woke every Tick, task or none: 10 times per Interval.)
func TestIdleWorkerLeaseSleeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, nil)
		const span = 50 // Intervals
		before := p.wk.Stats().Wakes
		time.Sleep(span * p.cfg.Interval)
		synctest.Wait()
		if w := float64(p.wk.Stats().Wakes-before) / span; w > 1 {
			t.Errorf("the lease goroutine of a worker with no task woke %.2f times per Interval", w)
		}
		task := p.startRunning(t)
		// The task runs past several lease terms: its checks renew it.
		time.Sleep(4 * DetectBound(p.cfg))
		synctest.Wait()
		if st := p.wk.Stats(); st.Aborted != 0 {
			t.Errorf("the task's lease lapsed while its master held it: %+v", st)
		}
		_ = p.m.Cancel(ctxFor(t, DetectBound(p.cfg)), task)
	})
}

// TestWorkWakesSleepingLoop: work handed to a probe loop that sleeps is
// done at the next point of its Tick grid, as a loop ticking every Tick
// would do it, wherever the hand-over falls between its ticks: a claim
// about this node (refuted, gossiped at the next tick) and an indirect
// probe asked for by a member (relayed at the next tick). Run in an idle
// cluster of sixteen, whose loops sleep between probe slots, at hand-over
// times spread over the Tick grid and the probe slots.
func TestWorkWakesSleepingLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const link = time.Millisecond // startMeshCluster's link delay
		cfg := DefaultConfig()
		cfg.Logger = quiet
		mc := startMeshCluster(t, 16, 1, cfg)
		nodes, addrs := mc.nodes, mc.addrs
		s := nodes[0].svc
		time.Sleep(5 * cfg.Interval)
		synctest.Wait()
		// Offsets 7 ms apart, coprime with the Tick (20 ms) and the slot
		// (100 ms): every phase of both, once per 20 hand-overs.
		const step = 7 * time.Millisecond
		for i := range 24 {
			time.Sleep(cfg.Interval + step)
			synctest.Wait()
			before := s.Stats()
			if i%2 == 0 {
				s.mu.Lock()
				s.refuteLocked(s.ep.Incarnation()) // a claim heard about this node
				s.mu.Unlock()
				time.Sleep(cfg.Tick)
				synctest.Wait()
				if st := s.Stats(); st.Refutations != before.Refutations+1 || st.GossipSent == before.GossipSent {
					t.Errorf("hand-over %d: a refutation not gossiped within a Tick: %d gossip datagrams before, %d after", i, before.GossipSent, st.GossipSent)
				}
				continue
			}
			var ps wire.Params
			ps.Reset(make([]byte, 256))
			ps.Uint64(uint64(1000 + i))
			ps.Uint64(0)
			ps.String(addrs[2].String())
			ps.Uint64(uint64(StateAlive))
			ps.Uint64(0)
			if err := nodes[1].ep.Send(addrs[0], CallProbeRequest, &ps); err != nil {
				t.Fatal(err)
			}
			time.Sleep(link + cfg.Tick)
			synctest.Wait()
			if st := s.Stats(); st.Relayed != before.Relayed+1 {
				t.Errorf("hand-over %d: an indirect probe asked for not started within a Tick of its arrival: %d relayed before, %d after", i, before.Relayed, st.Relayed)
			}
		}
		if st := s.Stats(); st.Suspects != 0 || st.Deaths != 0 {
			t.Errorf("suspicions in a calm cluster: %+v", st)
		}
	})
}
