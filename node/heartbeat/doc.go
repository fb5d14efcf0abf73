// Package heartbeat is fastcall's liveness service and its master/worker
// channels. It owns the call numbers 0x0100-0x01FF (wire.CallHeartbeatBase)
// and is specified by docs/HEARTBEAT.md.
//
// Liveness: a Service runs on an existing rfc.Endpoint with a list of
// member addresses. Each member probes every other member that it has not
// heard from within Config.Interval (any datagram counts as a sign of
// life, so a busy link needs no extra heartbeats). A member whose probes
// fail SuspectAfter times in a row becomes suspect; a suspect member is
// probed directly and, through up to IndirectProbes other members,
// indirectly; after DeadAfter such rounds without any sign of life it is
// declared dead and the engine's MarkDead fails every call parked on it
// with ENODEAD. Heartbeats carry incarnation numbers: a member that hears
// it is suspected or dead refutes it by raising its incarnation, and a
// member declared dead at incarnation n is alive again only when heard
// with an incarnation above n.
//
// Master/worker channels: a Master starts tasks on workers and a Worker
// runs them. Both follow the Service's events: a master that loses a
// worker ends the worker's tasks with ENODEAD at once; a worker that loses
// its master, or learns that the master declared it dead, cancels the
// master's tasks. Results carry the incarnation the task was started
// under, and the master rejects with ESTALE any result from an
// incarnation it has given up on.
//
// Goroutines: Start starts three, and nowhere else: the probe loop (timers,
// direct and indirect probes, state changes), the reprobe loop (dead
// members, which the engine refuses ordinary calls to) and the event loop
// (delivers events in order to listeners). NewWorker starts
// WorkerConfig.Runners task runners. No goroutine is started per probe,
// per call or per task.
package heartbeat
