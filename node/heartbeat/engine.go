package heartbeat

import "fastcall/rfc"

// The engine of a member that runs only the heartbeat service: its
// handlers are short and it has few calls in flight per interval (its
// probes, the indirect probes it runs for others, their relays), so one
// worker and small queues and caches serve it. The defaults of rfc are
// sized for a node serving many calls; these let hundreds of such
// members share one process, as the scale tests and benchmarks run them.
const (
	lightWorkers    = 1
	lightQueueLen   = 128
	lightMaxPending = 256
	lightDupEntries = 1024
)

// LightEngine returns cfg with the engine's workers, request queue,
// pending table and duplicate-request cache sized for a member that runs
// only the heartbeat service. MaxPeers, which depends on the size of the
// cluster, is the caller's.
func LightEngine(cfg rfc.Config) rfc.Config {
	cfg.Workers = lightWorkers
	cfg.QueueLen = lightQueueLen
	cfg.MaxPending = lightMaxPending
	cfg.DupEntries = lightDupEntries
	return cfg
}
