// Package heartbeat is fastcall's liveness service and its master/worker
// channels. It owns the call numbers 0x0100-0x01FF (wire.CallHeartbeatBase)
// and is specified by docs/HEARTBEAT.md.
//
// Liveness (SWIM with Lifeguard's refinements): a Service runs on an
// existing rfc.Endpoint with a list of member addresses (or joins through
// one, Join). Each member probes Config.ProbesPerInterval members per
// Interval from a shuffled round-robin (any datagram counts as a sign of
// life). A failed probe opens an indirect round through IndirectProbes
// other members; a round without any sign of life makes the member
// suspect. Suspicions, deaths and refutations are disseminated, on the
// probes and on gossip datagrams while any wait, each at most
// Retransmit·⌈log2(N+2)⌉ times. A member that hears a suspicion runs its
// own suspicion timer, which shrinks as distinct members confirm it; only
// its expiry here declares the member dead, and the engine's MarkDead
// then fails every call parked on it with ENODEAD. A suspected member
// refutes by raising its incarnation; a member declared dead at
// incarnation n is alive again only when heard itself above n (news of
// it from another member makes this node probe it). A node that is
// itself slow (late ticks; a refutation of a claim about it, at most
// once) stretches its own timeouts, and time it spent stalled does not
// count against others. While its own ticks run late (local health above
// 1, and one Interval after) it holds its verdicts about members not
// probed on their own cadence: a crash is declared by it only once its
// ticks are on time again (DetectBoundAt is stated for health 0), and
// the work that failures cause is bounded by Config.Budget.
//
// Master/worker channels: a Master starts tasks on workers and a Worker
// runs them. Both follow the Service's events: a master that loses a
// worker ends the worker's tasks with ENODEAD at once; a worker that loses
// its master, or learns that the master declared it dead, cancels the
// master's tasks. A worker runs a task only once the master confirms,
// in answer to a check sent after the acceptance, that it still holds
// it (a start held in the network or in a stopped worker's socket looks
// fresh), and only under a lease renewed by such checks. Results carry
// the master and worker incarnations the task was started under, and
// the master rejects with ESTALE any result of another start or of an
// incarnation it has given up on.
//
// Goroutines: Start starts three, and nowhere else: the probe loop (timers,
// direct and indirect probes, state changes, gossip), the reprobe loop (dead
// members, which the engine refuses ordinary calls to) and the event loop
// (delivers events in order to listeners). NewWorker starts
// WorkerConfig.Runners task runners and the lease goroutine. No goroutine
// is started per probe, per call or per task.
package heartbeat
