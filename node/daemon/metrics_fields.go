package daemon

import (
	"fastcall/node/dispatch"
	"fastcall/node/heartbeat"
	"fastcall/node/registry/center"
	"fastcall/node/route"
	"fastcall/node/route/audit"
)

// The roles' counters as metrics, one table per statistics snapshot.

type routeCounters = route.ClusterCounters

func u(v uint64) float64 { return float64(v) }

var heartbeatFields = []field[heartbeat.Stats]{
	{"fastcall_heartbeat_probes_total", "counter", "Direct probes sent.", func(s *heartbeat.Stats) float64 { return u(s.Probes) }},
	{"fastcall_heartbeat_probe_failures_total", "counter", "Direct probes that failed.", func(s *heartbeat.Stats) float64 { return u(s.ProbeFails) }},
	{"fastcall_heartbeat_probes_skipped_total", "counter", "Probes not sent because the member was heard within the interval.", func(s *heartbeat.Stats) float64 { return u(s.ProbesSkipped) }},
	{"fastcall_heartbeat_indirect_probes_total", "counter", "Indirect probe requests sent.", func(s *heartbeat.Stats) float64 { return u(s.IndirectSent) }},
	{"fastcall_heartbeat_relayed_total", "counter", "Indirect probes run for other members.", func(s *heartbeat.Stats) float64 { return u(s.Relayed) }},
	{"fastcall_heartbeat_relay_dropped_total", "counter", "Indirect probe requests dropped.", func(s *heartbeat.Stats) float64 { return u(s.RelayDropped) }},
	{"fastcall_heartbeat_suspects_total", "counter", "Transitions of members to suspect.", func(s *heartbeat.Stats) float64 { return u(s.Suspects) }},
	{"fastcall_heartbeat_deaths_total", "counter", "Transitions of members to dead.", func(s *heartbeat.Stats) float64 { return u(s.Deaths) }},
	{"fastcall_heartbeat_rejoins_total", "counter", "Transitions of members from suspect or dead to alive.", func(s *heartbeat.Stats) float64 { return u(s.Rejoins) }},
	{"fastcall_heartbeat_refutations_total", "counter", "Times this node raised its incarnation to refute a suspicion.", func(s *heartbeat.Stats) float64 { return u(s.Refutations) }},
	{"fastcall_heartbeat_events_dropped_total", "counter", "Membership events lost to a full queue.", func(s *heartbeat.Stats) float64 { return u(s.EventsDropped) }},
	{"fastcall_heartbeat_non_member_calls_total", "counter", "Heartbeat, probe-request and probe-ack calls from non-members; their claims ignored.", func(s *heartbeat.Stats) float64 { return u(s.NonMember) }},
	{"fastcall_heartbeat_updates_sent_total", "counter", "Membership updates piggybacked on heartbeats.", func(s *heartbeat.Stats) float64 { return u(s.UpdatesSent) }},
	{"fastcall_heartbeat_updates_heard_total", "counter", "Membership updates received from members.", func(s *heartbeat.Stats) float64 { return u(s.UpdatesHeard) }},
	{"fastcall_heartbeat_bad_updates_total", "counter", "Malformed update parameters (the rest of the parameter dropped).", func(s *heartbeat.Stats) float64 { return u(s.BadUpdates) }},
	{"fastcall_heartbeat_gossip_sent_total", "counter", "Gossip datagrams sent (only while updates wait).", func(s *heartbeat.Stats) float64 { return u(s.GossipSent) }},
	{"fastcall_heartbeat_joined_total", "counter", "Members added by a join.", func(s *heartbeat.Stats) float64 { return u(s.Joined) }},
	{"fastcall_heartbeat_extra_sent_total", "counter", "Datagrams of failure-driven work sent within the budget: indirect requests, probes off the schedule, relays, gossip.", func(s *heartbeat.Stats) float64 { return u(s.Extra) }},
	{"fastcall_heartbeat_deferred_total", "counter", "Failure-driven datagrams the budget put off (at each tick that tried) or dropped (relays).", func(s *heartbeat.Stats) float64 { return u(s.Deferred) }},
	{"fastcall_heartbeat_wakes_total", "counter", "Times the probe loop woke.", func(s *heartbeat.Stats) float64 { return u(s.Wakes) }},
	{"fastcall_heartbeat_health", "gauge", "Local health score: timeouts are stretched by 1+health (0: healthy).", func(s *heartbeat.Stats) float64 { return float64(s.Health) }},
}

var masterFields = []field[heartbeat.MasterStats]{
	{"fastcall_master_tasks_started_total", "counter", "Tasks accepted by a worker.", func(s *heartbeat.MasterStats) float64 { return u(s.Started) }},
	{"fastcall_master_tasks_completed_total", "counter", "Task results applied.", func(s *heartbeat.MasterStats) float64 { return u(s.Completed) }},
	{"fastcall_master_tasks_failed_total", "counter", "Tasks ended by a lost worker.", func(s *heartbeat.MasterStats) float64 { return u(s.Failed) }},
	{"fastcall_master_results_stale_total", "counter", "Results rejected with ESTALE.", func(s *heartbeat.MasterStats) float64 { return u(s.Stale) }},
	{"fastcall_master_results_unknown_total", "counter", "Results for task ids never issued.", func(s *heartbeat.MasterStats) float64 { return u(s.Unknown) }},
	{"fastcall_master_start_replies_malformed_total", "counter", "Task-start replies refused as malformed (EPROTO; the task cancelled on the worker).", func(s *heartbeat.MasterStats) float64 { return u(s.Malformed) }},
	{"fastcall_master_starts_retried_total", "counter", "Task starts refused ESTALE (unrun) and sent once more.", func(s *heartbeat.MasterStats) float64 { return u(s.Retried) }},
}

var workerFields = []field[heartbeat.WorkerStats]{
	{"fastcall_worker_tasks_started_total", "counter", "Tasks accepted.", func(s *heartbeat.WorkerStats) float64 { return u(s.Started) }},
	{"fastcall_worker_tasks_finished_total", "counter", "Results the master applied.", func(s *heartbeat.WorkerStats) float64 { return u(s.Finished) }},
	{"fastcall_worker_tasks_aborted_total", "counter", "Tasks cancelled because their master was lost.", func(s *heartbeat.WorkerStats) float64 { return u(s.Aborted) }},
	{"fastcall_worker_results_stale_total", "counter", "Results the master rejected with ESTALE.", func(s *heartbeat.WorkerStats) float64 { return u(s.Stale) }},
	{"fastcall_worker_results_lost_total", "counter", "Results that could not be delivered.", func(s *heartbeat.WorkerStats) float64 { return u(s.Lost) }},
	{"fastcall_worker_starts_refused_total", "counter", "Stale task starts refused with ESTALE, unrun.", func(s *heartbeat.WorkerStats) float64 { return u(s.Refused) }},
	{"fastcall_worker_wakes_total", "counter", "Times the lease goroutine woke.", func(s *heartbeat.WorkerStats) float64 { return u(s.Wakes) }},
}

var centerFields = []field[center.CenterStats]{
	{"fastcall_registry_keys", "gauge", "Keys in the center's store, tombstones included.", func(s *center.CenterStats) float64 { return float64(s.Keys) }},
	{"fastcall_registry_streams", "gauge", "Open push streams.", func(s *center.CenterStats) float64 { return float64(s.Streams) }},
	{"fastcall_registry_writes_total", "counter", "Writes made at this center and acknowledged.", func(s *center.CenterStats) float64 { return u(s.Writes) }},
	{"fastcall_registry_writes_alone_total", "counter", "Writes made while the other center was dead.", func(s *center.CenterStats) float64 { return u(s.WritesAlone) }},
	{"fastcall_registry_conflicts_total", "counter", "Writes refused with ECONFLICT.", func(s *center.CenterStats) float64 { return u(s.Conflicts) }},
	{"fastcall_registry_again_total", "counter", "Writes refused with EAGAIN (other center unreachable).", func(s *center.CenterStats) float64 { return u(s.Again) }},
	{"fastcall_registry_replicated_total", "counter", "Writes of the other center applied here.", func(s *center.CenterStats) float64 { return u(s.Replicated) }},
	{"fastcall_registry_replica_refused_total", "counter", "Writes of the other center refused here.", func(s *center.CenterStats) float64 { return u(s.ReplicaRefused) }},
	{"fastcall_registry_sync_rounds_total", "counter", "Anti-entropy rounds completed.", func(s *center.CenterStats) float64 { return u(s.SyncRounds) }},
	{"fastcall_registry_sync_applied_total", "counter", "Entries taken from the other center by anti-entropy.", func(s *center.CenterStats) float64 { return u(s.SyncApplied) }},
	{"fastcall_registry_sync_failed_total", "counter", "Anti-entropy rounds abandoned.", func(s *center.CenterStats) float64 { return u(s.SyncFailed) }},
	{"fastcall_registry_expired_total", "counter", "Entries deleted by TTL or lease expiry.", func(s *center.CenterStats) float64 { return u(s.Expired) }},
	{"fastcall_registry_dead_removed_total", "counter", "Instances removed because their node died.", func(s *center.CenterStats) float64 { return u(s.DeadRemoved) }},
	{"fastcall_registry_dead_dropped_total", "counter", "Dead-node notices lost to a full queue.", func(s *center.CenterStats) float64 { return u(s.DeadDropped) }},
	{"fastcall_registry_pushes_total", "counter", "Push batches acknowledged.", func(s *center.CenterStats) float64 { return u(s.Pushes) }},
	{"fastcall_registry_push_failures_total", "counter", "Push calls that failed (retried).", func(s *center.CenterStats) float64 { return u(s.PushFailures) }},
	{"fastcall_registry_push_dropped_total", "counter", "Streams dropped.", func(s *center.CenterStats) float64 { return u(s.PushDropped) }},
	{"fastcall_registry_streams_overflowed_total", "counter", "Streams whose queue overflowed.", func(s *center.CenterStats) float64 { return u(s.StreamsOverflowed) }},
	{"fastcall_registry_malformed_total", "counter", "Malformed requests refused.", func(s *center.CenterStats) float64 { return u(s.Malformed) }},
	{"fastcall_registry_not_peer_total", "counter", "Calls between centers refused (EPERM) from a sender that is not the peer center.", func(s *center.CenterStats) float64 { return u(s.NotPeer) }},
	{"fastcall_registry_not_owner_total", "counter", "Deregistrations and registrations over a live instance refused (EPERM) from an address other than its owner's.", func(s *center.CenterStats) float64 { return u(s.NotOwner) }},
	{"fastcall_registry_streams_expired_total", "counter", "Push streams dropped for not being renewed within StreamIdle.", func(s *center.CenterStats) float64 { return u(s.StreamsExpired) }},
	{"fastcall_registry_subscribe_refused_total", "counter", "Subscriptions refused past a bound (ENOSPC).", func(s *center.CenterStats) float64 { return u(s.SubscribeRefused) }},
	{"fastcall_registry_retried_total", "counter", "Client operations found applied before and answered again.", func(s *center.CenterStats) float64 { return u(s.Retried) }},
	{"fastcall_registry_not_caught_up_total", "counter", "Client reads and writes refused (EBUSY) before the first anti-entropy round.", func(s *center.CenterStats) float64 { return u(s.NotCaughtUp) }},
	{"fastcall_registry_recovered_records", "gauge", "Records applied at start from the snapshot and the log.", func(s *center.CenterStats) float64 { return float64(s.Recovered) }},
	{"fastcall_registry_torn_bytes", "gauge", "Bytes cut off the log's tail at start.", func(s *center.CenterStats) float64 { return float64(s.TornBytes) }},
	{"fastcall_registry_log_errors_total", "counter", "Log write or sync failures.", func(s *center.CenterStats) float64 { return u(s.LogErrors) }},
	{"fastcall_registry_snapshots_total", "counter", "Snapshots written.", func(s *center.CenterStats) float64 { return u(s.Snapshots) }},
}

var dispatchFields = []field[dispatch.Stats]{
	{"fastcall_dispatch_submitted_total", "counter", "Operations accepted.", func(s *dispatch.Stats) float64 { return u(s.Submitted) }},
	{"fastcall_dispatch_conflicts_total", "counter", "Operations refused with ECONFLICT.", func(s *dispatch.Stats) float64 { return u(s.Conflicts) }},
	{"fastcall_dispatch_busy_total", "counter", "Operations refused with EBUSY.", func(s *dispatch.Stats) float64 { return u(s.Busy) }},
	{"fastcall_dispatch_marker_errors_total", "counter", "Operations refused because the marker store failed.", func(s *dispatch.Stats) float64 { return u(s.MarkerErrors) }},
	{"fastcall_dispatch_sent_total", "counter", "Calls sent to targets.", func(s *dispatch.Stats) float64 { return u(s.Sent) }},
	{"fastcall_dispatch_send_busy_total", "counter", "Sends retried for lack of a free call slot.", func(s *dispatch.Stats) float64 { return u(s.SendBusy) }},
	{"fastcall_dispatch_targets_ok_total", "counter", "Targets that answered OK.", func(s *dispatch.Stats) float64 { return u(s.TargetsOK) }},
	{"fastcall_dispatch_targets_failed_total", "counter", "Targets with any other outcome.", func(s *dispatch.Stats) float64 { return u(s.TargetsFailed) }},
	{"fastcall_dispatch_ops_done_total", "counter", "Operations done.", func(s *dispatch.Stats) float64 { return u(s.OpsDone) }},
	{"fastcall_dispatch_release_failed_total", "counter", "Markers left to their TTL because the release failed.", func(s *dispatch.Stats) float64 { return u(s.ReleaseFailed) }},
	{"fastcall_dispatch_remote_submits_total", "counter", "Operations accepted through the SUBMIT call.", func(s *dispatch.Stats) float64 { return u(s.RemoteSubmits) }},
	{"fastcall_dispatch_queued_calls", "gauge", "Calls waiting to be sent.", func(s *dispatch.Stats) float64 { return float64(s.Queued) }},
	{"fastcall_dispatch_active_ops", "gauge", "Operations not yet done.", func(s *dispatch.Stats) float64 { return float64(s.Active) }},
	{"fastcall_dispatch_retained_ops", "gauge", "Done operations whose status is kept.", func(s *dispatch.Stats) float64 { return float64(s.Retained) }},
	{"fastcall_dispatch_remote_refused_total", "counter", "Remote SUBMITs refused EPERM: a target outside the allowed ones or a call of fastcall's own services.", func(s *dispatch.Stats) float64 { return u(s.RemoteRefused) }},
}

var auditFields = []field[audit.Stats]{
	{"fastcall_route_audit_written_total", "counter", "Audit records written.", func(s *audit.Stats) float64 { return u(s.Written) }},
	{"fastcall_route_audit_dropped_total", "counter", "Audit records dropped (queue full, no file open, a failed write, or past the line bound).", func(s *audit.Stats) float64 { return u(s.Dropped) }},
	{"fastcall_route_audit_oversize_total", "counter", "Audit records dropped because their line passed the query's line bound.", func(s *audit.Stats) float64 { return u(s.Oversize) }},
	{"fastcall_route_audit_write_errors_total", "counter", "Failed audit writes, opens and rotations.", func(s *audit.Stats) float64 { return u(s.WriteErrors) }},
	{"fastcall_route_audit_rotations_total", "counter", "Audit file rotations.", func(s *audit.Stats) float64 { return u(s.Rotations) }},
}
