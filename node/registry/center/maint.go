package center

import (
	"context"
	"net/netip"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// maintLoop is the center's housekeeping goroutine: every SweepEvery it
// expires KV entries and leases, purges old tombstones, retries failed
// pushes and writes a snapshot when the log has grown or an fsync of it
// failed (the snapshot rewrites the store and the log accepts writes
// again); it removes the instances of dead nodes as their notices arrive.
func (c *Center) maintLoop() {
	defer c.wg.Done()
	sweep := time.NewTicker(c.cfg.SweepEvery)
	defer sweep.Stop()
	snapFailed := false
	for {
		select {
		case <-c.done:
			return
		case addr := <-c.deadQ:
			c.removeDead(addr)
		case <-sweep.C:
			c.retryStreams(c.ep.Now())
			c.sweep()
			if c.wal.failed.Load() || c.wal.size() > c.cfg.SnapshotBytes {
				snapFailed = !c.snapshot(!snapFailed)
			}
		}
	}
}

// logSyncLoop is the log syncer goroutine (logsync.go): it runs the
// fsyncs that nobody blocks on, the one a replica starts as it is
// answered and those registry.CallLogSync waits for, and the periodic fsync of
// FsyncInterval.
func (c *Center) logSyncLoop() {
	defer c.wg.Done()
	c.wal.syncLoop(c.done, c.cfg.FsyncEvery, c.logFailure)
}

// expiry is an entry found past its TTL or lease.
type expiry struct {
	key     string
	version uint64
	e       *entry
}

// sweep deletes expired entries (through the write path, so the deletion
// is replicated and pushed) and purges tombstones past TombstoneAge.
func (c *Center) sweep() {
	nowMs, monoNs := c.clock.WallMs(), c.clock.MonoNs()
	var due []expiry
	var purge []string
	c.mu.Lock()
	c.mu.st.takeDue(nowMs, monoNs, func(k string, e *entry) {
		if e.kind == sdk.KindTombstone {
			purge = append(purge, k)
		} else {
			due = append(due, expiry{k, e.version, e})
		}
	})
	taken := c.mu.st.rebuilds
	for _, k := range purge {
		c.mu.st.remove(k)
	}
	c.mu.Unlock()
	var failed []expiry
	for _, d := range due {
		if _, e := c.expire(d); e == wire.OK {
			c.stats.expired.Add(1)
		} else {
			failed = append(failed, d)
		}
	}
	if len(failed) == 0 {
		return
	}
	// An expiry whose write failed (the log refused it, or the center
	// closes) is tried again at the next sweep, as long as the entry is
	// the one found due (renewed in place or not); one replaced
	// meanwhile, or still stored when the heaps were rebuilt meanwhile,
	// is tracked already (store.handBack).
	c.mu.Lock()
	for _, d := range failed {
		c.mu.st.handBack(d.key, d.e, taken)
	}
	c.mu.Unlock()
}

// dueLocked reports whether e is past its TTL or lease; c.mu is held.
func (c *Center) dueLocked(e *entry) bool {
	return e != nil && e.due(c.clock.WallMs(), c.clock.MonoNs())
}

// expire deletes an entry if it is still at the version found expired
// and still past its TTL or lease (a renewal may have come meanwhile).
func (c *Center) expire(d expiry) (uint64, wire.Errno) {
	op := writeOp{key: d.key, rawCheck: true, rawExpect: d.version, dueOnly: true}
	op.rec = sdk.Record{Kind: sdk.KindTombstone}
	return c.write(&op)
}

// removeDead deletes every instance registered from a dead node's
// address and drops its push streams.
func (c *Center) removeDead(addr netip.AddrPort) {
	owner := addr.String()
	var due []expiry
	c.mu.Lock()
	for k := range c.mu.owners[owner] {
		if e := c.mu.st.get(k); e != nil && e.kind == sdk.KindService {
			due = append(due, expiry{k, e.version, e})
		}
	}
	c.mu.Unlock()
	for _, d := range due {
		op := writeOp{key: d.key, rawCheck: true, rawExpect: d.version}
		op.rec = sdk.Record{Kind: sdk.KindTombstone}
		if _, e := c.write(&op); e == wire.OK {
			c.stats.deadRemoved.Add(1)
		} else {
			// The other center removed it first, or the node registered
			// again; the lease still expires if neither.
			c.log.Debug("registry: dead instance not removed", "key", d.key, "errno", e.String())
		}
	}
	if n := c.push.dropAddr(addr); n > 0 {
		c.stats.pushDropped.Add(uint64(n))
	}
	if len(due) > 0 {
		c.log.Info("registry: node dead, instances removed", "addr", owner, "count", len(due))
	}
}

// snapshot writes the store to a snapshot and restarts the log; it
// reports whether it succeeded, and logs a failure if report is set.
func (c *Center) snapshot(report bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	failed := c.wal.failed.Load()
	err := c.wal.snapshot(func(fn func(key string, rec []byte)) {
		for _, k := range c.mu.st.keys {
			fn(k, c.mu.st.m[k].rec)
		}
	})
	if err != nil {
		c.stats.logErrors.Add(1)
		if report {
			c.log.Error("registry snapshot failed", "err", err.Error())
		}
		return false
	}
	c.stats.snapshots.Add(1)
	if failed {
		c.failLogged.Store(false)
		c.log.Info("registry log rewritten by a snapshot; writes accepted again")
	}
	return true
}

// syncLoop is the anti-entropy goroutine: at start, whenever the other
// center comes back, and every AntiEntropyEvery, it pages through the
// other center's store (tombstones included) and takes every entry whose
// version is newer than its own. The other center does the same, so
// after both rounds each holds the newer version of every key.
func (c *Center) syncLoop() {
	defer c.wg.Done()
	if !c.cfg.Peer.IsValid() {
		<-c.done
		return
	}
	tick := time.NewTicker(c.cfg.AntiEntropyEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.syncKick:
		case <-tick.C:
		}
		if info, ok := c.ep.Peer(c.cfg.Peer); ok && info.State == rfc.PeerDead {
			continue
		}
		if c.antiEntropy() {
			c.stats.syncRounds.Add(1)
		} else {
			c.stats.syncFailed.Add(1)
		}
	}
}

// antiEntropy runs one round; it reports whether it reached the end. A
// page the other center answers that is malformed, or whose next key does
// not move on (registry.ListNext), ends the round as failed: a faulty
// center cannot keep it paging without end.
func (c *Center) antiEntropy() bool {
	var reply rfc.Reply
	after := ""
	for {
		select {
		case <-c.done:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ReplicateTimeout)
		err := registry.ListCall(ctx, c.ep, c.cfg.Peer, "", after, c.cfg.SyncPage, registry.ListTombstones, &reply)
		cancel()
		if err != nil {
			return false
		}
		n, next, err := c.takeEntries(&reply.Packet, "", after)
		if err != nil {
			// Counted as malformed; the round fails (syncFailed).
			return false
		}
		c.stats.syncApplied.Add(uint64(n))
		if next == "" {
			return true
		}
		after = next
	}
}
