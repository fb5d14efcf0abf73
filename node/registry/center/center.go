package center

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/node/internal/closing"
	"fastcall/node/registry"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// Center is one registry center running on an rfc.Endpoint. All methods
// are safe for concurrent use.
//
// Lock order: Center.mu, then pushTable.mu, then the log's locks. Handlers
// that wait for the other center (writes) hold no lock while they wait.
type Center struct {
	ep    *rfc.Endpoint
	cfg   Config
	log   *slog.Logger
	clock Clock
	wal   *logFile
	// epoch is this start's epoch (epoch.go): greater than that of every
	// earlier start of the center, it goes into every record the center
	// makes, so that a version number made again after a restart that
	// lost the first record makes a different, newer sdk.Stamp.
	epoch uint64

	mu struct {
		closing.Mutex
		st       *store
		inflight map[string]uint64              // keys with a write of this center waiting for the other center -> the version it makes
		owners   map[string]map[string]struct{} // owner address -> instance keys
		ops      opTable                        // client operations applied
	}
	written *sync.Cond // on mu: a key left inflight, or a record was applied

	push     pushTable
	pushWake chan *stream        // streams with changes to push; bounded by Config.MaxStreams
	deadQ    chan netip.AddrPort // dead-node notices; bounded by Config.DeadQueue
	syncKick chan struct{}       // anti-entropy wanted now; capacity 1

	stats      centerStats
	caughtUp   atomic.Bool // serving: see Center.serving
	failLogged atomic.Bool // the log's current failure was logged
	done       chan struct{}
	wg         sync.WaitGroup
}

// centerStats are a center's counters.
type centerStats struct {
	writes, writesAlone, conflicts, again atomic.Uint64
	replicated, replicaRefused            atomic.Uint64
	syncRounds, syncApplied, syncFailed   atomic.Uint64
	expired, deadRemoved, deadDropped     atomic.Uint64
	pushes, pushFailures, pushDropped     atomic.Uint64
	streamsOverflowed, malformed          atomic.Uint64
	streamsExpired, subscribeRefused      atomic.Uint64
	logErrors, snapshots                  atomic.Uint64
	retried, notCaughtUp                  atomic.Uint64
	notPeer, notOwner                     atomic.Uint64
}

// CenterStats is a snapshot of a center's counters.
type CenterStats struct {
	Keys              int    // keys in the store, tombstones included
	Streams           int    // open push streams
	Writes            uint64 // writes made here and acknowledged
	WritesAlone       uint64 // of which made while the other center was dead
	Conflicts         uint64 // writes refused with ECONFLICT
	Again             uint64 // writes refused with EAGAIN (other center unreachable)
	Replicated        uint64 // writes of the other center applied here
	ReplicaRefused    uint64 // writes of the other center refused here
	SyncRounds        uint64 // anti-entropy rounds completed
	SyncApplied       uint64 // entries taken from the other center by anti-entropy
	SyncFailed        uint64 // anti-entropy rounds abandoned
	Expired           uint64 // entries deleted by TTL or lease expiry
	DeadRemoved       uint64 // instances removed because their node died
	DeadDropped       uint64 // dead-node notices lost to a full queue
	Pushes            uint64 // push batches acknowledged
	PushFailures      uint64 // push calls that failed (retried)
	PushDropped       uint64 // streams dropped (gone, resynchronizing, or failing)
	StreamsOverflowed uint64 // streams whose queue overflowed
	StreamsExpired    uint64 // streams dropped for not being renewed within StreamIdle
	SubscribeRefused  uint64 // subscriptions refused past a bound (ENOSPC)
	Malformed         uint64 // malformed requests refused
	NotPeer           uint64 // calls between centers refused (EPERM) from a sender that is not the peer center
	NotOwner          uint64 // registrations and deregistrations refused (EPERM) from an address that is not the live instance's owner
	LogErrors         uint64 // log write or sync failures
	Snapshots         uint64 // snapshots written
	Retried           uint64 // client operations found applied before and answered again
	NotCaughtUp       uint64 // client reads and writes refused (EBUSY) before the first anti-entropy round
	Recovered         int    // records applied at start (snapshot and log)
	TornBytes         int64  // bytes cut off the log's tail at start
}

// StartCenter recovers the store from cfg.DataDir, registers the registry
// call numbers on ep and starts the center's goroutines. It can run once
// per endpoint.
func StartCenter(ep *rfc.Endpoint, cfg Config) (*Center, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Center{ep: ep, cfg: cfg, log: cfg.Logger, clock: cfg.Clock, done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.clock == nil {
		c.clock = hostClock{ep}
	}
	if c.cfg.Disk == nil {
		c.cfg.Disk = OSDisk{}
	}
	c.cfg.IDs = c.cfg.IDs.OrRandom()
	c.mu.st = newStore()
	c.mu.inflight = make(map[string]uint64)
	c.mu.owners = make(map[string]map[string]struct{})
	c.mu.ops.init()
	c.written = sync.NewCond(&c.mu)
	c.push.init()
	c.pushWake = make(chan *stream, cfg.MaxStreams)
	c.deadQ = make(chan netip.AddrPort, cfg.DeadQueue)
	c.syncKick = make(chan struct{}, 1)

	nowMs := c.clock.WallMs()
	var maxEpoch uint64
	wal, err := openLog(c.cfg.Disk, c.cfg.IDs, cfg.DataDir, cfg.Fsync, func(key string, rec []byte) {
		e, ok := entryFromRecord(rec, c.clock.MonoNs(), cfg.TombstoneAge.Milliseconds())
		if ok {
			maxEpoch = max(maxEpoch, e.epoch)
		}
		if ok && !c.purgedLocked(key, e, nowMs) {
			c.setLocked(key, e, nowMs)
		}
	})
	if err != nil {
		return nil, err
	}
	c.wal = wal
	if c.epoch, err = nextEpoch(wal, maxEpoch); err != nil {
		wal.close()
		return nil, err
	}
	if wal.upgraded {
		// The files were of the previous format: rewrite the store in
		// the current one before anything is appended.
		if !c.snapshot(true) {
			wal.close()
			return nil, wire.EFAULT
		}
		c.log.Info("registry data upgraded to the current record format", "dir", cfg.DataDir)
	}
	keys := c.mu.st.len()

	calls := []rfc.CallSpec{
		{No: registry.CallGet, Name: "reg-get", Schema: registry.SchemaGet, Flags: rfc.Idempotent, H: c.serveGet},
		{No: registry.CallPut, Name: "reg-put", Schema: registry.SchemaPut, H: c.servePut},
		{No: registry.CallDelete, Name: "reg-delete", Schema: registry.SchemaDelete, H: c.serveDelete},
		{No: registry.CallList, Name: "reg-list", Schema: registry.SchemaList, Flags: rfc.Idempotent, H: c.serveList},
		{No: registry.CallRegister, Name: "reg-register", Schema: registry.SchemaRegister, H: c.serveRegister},
		{No: registry.CallDeregister, Name: "reg-deregister", Schema: registry.SchemaDeregister, H: c.serveDeregister},
		{No: registry.CallRenew, Name: "reg-renew", Schema: registry.SchemaRenew, Flags: rfc.Idempotent, H: c.serveRenew},
		{No: registry.CallSubscribe, Name: "reg-subscribe", Schema: registry.SchemaSubscribe, Flags: rfc.Idempotent, H: c.serveSubscribe},
		{No: registry.CallUnsubscribe, Name: "reg-unsubscribe", Schema: registry.SchemaUnsubscribe, Flags: rfc.Idempotent, H: c.serveUnsubscribe},
		{No: registry.CallSubCheck, Name: "reg-subcheck", Schema: registry.SchemaSubCheck, Flags: rfc.Idempotent, H: c.serveSubCheck},
		{No: registry.CallReplicate, Name: "reg-replicate", Schema: registry.SchemaReplicate, Flags: rfc.Priority, H: c.serveReplicate},
		{No: registry.CallTouch, Name: "reg-touch", Schema: registry.SchemaTouch, Flags: rfc.Idempotent | rfc.Priority, H: c.serveTouch},
	}
	if err := ep.RegisterCalls(calls); err != nil {
		wal.close()
		return nil, err
	}
	if err := ep.RegisterDeferred(registry.CallLogSync, "reg-logsync", registry.SchemaLogSync, rfc.Inline, c.serveLogSync); err != nil {
		wal.close()
		return nil, err
	}
	ep.NameCall(registry.CallPush, "reg-push")
	ep.OnPeerChange(c.peerChanged)

	// Every long-lived goroutine of the center starts here.
	c.wg.Add(3 + cfg.Pushers)
	go c.maintLoop()
	go c.logSyncLoop()
	go c.syncLoop()
	for i := 0; i < cfg.Pushers; i++ {
		go c.pushLoop()
	}
	c.kickSync()
	c.log.Info("registry center up", "addr", ep.Addr().String(), "index", cfg.Index,
		"peer", cfg.Peer.String(), "keys", keys, "recovered", wal.recovered,
		"torn-bytes", wal.tornBytes, "fsync", cfg.Fsync.String())
	return c, nil
}

// Close stops the center's goroutines, syncs and closes the log. The call
// numbers stay registered on the endpoint and answer ECLOSED. Idempotent.
func (c *Center) Close() error {
	if !c.mu.LockToClose() {
		return nil
	}
	c.written.Broadcast()
	c.mu.Unlock()
	close(c.done)
	c.wg.Wait()
	return c.wal.close()
}

// catchUpRounds is how many anti-entropy rounds a center completes after
// its start before it serves clients: the first one's calls tell the
// other center it is alive again, so that the other center replicates
// its writes here from then on; the second one takes what the other
// center wrote alone before it heard of this one.
const catchUpRounds = 2

// serving reports whether the center serves client reads and writes
// (registry.CallGet, registry.CallPut, registry.CallDelete, registry.CallRegister, registry.CallDeregister). From its
// start until it has completed catchUpRounds anti-entropy rounds, a
// center with a peer may lack writes the other center applied while it
// was down: it answers EBUSY (not run; the client goes to the other
// center) unless the other center is declared dead, when it goes on
// alone with what it holds. Once serving, it stays so. A refusal asks
// for an anti-entropy round at once (kickSync), so that the rounds do not
// wait for the next period.
func (c *Center) serving() bool {
	if c.caughtUp.Load() {
		return true
	}
	if !c.cfg.Peer.IsValid() || c.stats.syncRounds.Load() >= catchUpRounds {
		c.caughtUp.Store(true)
		return true
	}
	if info, ok := c.ep.Peer(c.cfg.Peer); ok && info.State == rfc.PeerDead {
		c.caughtUp.Store(true)
		return true
	}
	c.stats.notCaughtUp.Add(1)
	c.kickSync()
	return false
}

// Endpoint returns the endpoint the center runs on.
func (c *Center) Endpoint() *rfc.Endpoint { return c.ep }

// Config returns the configuration the center runs with.
func (c *Center) Config() Config { return c.cfg }

// Stats returns a snapshot of the counters.
func (c *Center) Stats() CenterStats {
	st := &c.stats
	c.mu.Lock()
	keys := c.mu.st.len()
	c.mu.Unlock()
	return CenterStats{
		Keys: keys, Streams: c.push.count(),
		Writes: st.writes.Load(), WritesAlone: st.writesAlone.Load(), Conflicts: st.conflicts.Load(),
		Again: st.again.Load(), Replicated: st.replicated.Load(), ReplicaRefused: st.replicaRefused.Load(),
		SyncRounds: st.syncRounds.Load(), SyncApplied: st.syncApplied.Load(), SyncFailed: st.syncFailed.Load(),
		Expired: st.expired.Load(), DeadRemoved: st.deadRemoved.Load(), DeadDropped: st.deadDropped.Load(),
		Pushes: st.pushes.Load(), PushFailures: st.pushFailures.Load(), PushDropped: st.pushDropped.Load(),
		StreamsOverflowed: st.streamsOverflowed.Load(), Malformed: st.malformed.Load(), NotPeer: st.notPeer.Load(),
		NotOwner: st.notOwner.Load(), StreamsExpired: st.streamsExpired.Load(), SubscribeRefused: st.subscribeRefused.Load(),
		LogErrors: st.logErrors.Load(), Snapshots: st.snapshots.Load(), Retried: st.retried.Load(),
		NotCaughtUp: st.notCaughtUp.Load(),
		Recovered:   c.wal.recovered, TornBytes: c.wal.tornBytes,
	}
}

// Entry returns the center's own record of key (tombstones included), for
// tests and tools; ok is false if the key is unknown.
func (c *Center) Entry(key string) (rec []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.mu.st.get(key)
	if e == nil {
		return nil, false
	}
	return e.rec, true
}

// setLocked stores e under key and keeps the owner index and the table
// of applied operations; c.mu is held.
func (c *Center) setLocked(key string, e *entry, nowMs int64) {
	c.mu.ops.add(e.op, key, e.version, nowMs)
	if old := c.mu.st.get(key); old != nil && old.kind == sdk.KindService {
		if set := c.mu.owners[old.owner]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(c.mu.owners, old.owner)
			}
		}
	}
	switch e.kind {
	case sdk.KindService:
		set := c.mu.owners[e.owner]
		if set == nil {
			set = make(map[string]struct{})
			c.mu.owners[e.owner] = set
		}
		set[key] = struct{}{}
	}
	c.mu.st.set(key, e)
}

// purgedLocked reports whether e is a tombstone past its age (at wall
// time nowMs) for a key the store does not hold. Such a tombstone is not
// taken: this center purged it, or holds nothing it would delete, and
// taking it back would only keep it for another age, in turn with the
// other center, for good. A tombstone past its age still replaces an
// older record held (applyLocked), so a late deletion is not lost; it is
// purged at the next sweep. c.mu is held.
func (c *Center) purgedLocked(key string, e *entry, nowMs int64) bool {
	return e.kind == sdk.KindTombstone && e.expireMs <= nowMs && c.mu.st.get(key) == nil
}

// applyLocked stores rec under key if its stamp (version, then epoch) is
// newer than the store's (stamps decide) and it is not a tombstone this
// center purged (purgedLocked), appends it to the log and queues it for
// the subscribers. It reports whether the record was applied and the log
// position to sync to. c.mu is held.
func (c *Center) applyLocked(key string, rec []byte, nowMs int64) (logPos, bool, error) {
	e, ok := entryFromRecord(rec, c.clock.MonoNs(), c.cfg.TombstoneAge.Milliseconds())
	if !ok {
		return logPos{}, false, wire.EPROTO
	}
	if cur := c.mu.st.get(key); cur != nil && cur.stamp().Compare(e.stamp()) >= 0 {
		return logPos{}, false, nil
	}
	if c.purgedLocked(key, e, nowMs) {
		return logPos{}, false, nil
	}
	pos, err := c.wal.append(key, rec)
	if err != nil {
		c.logFailure(err)
		return logPos{}, false, wire.EFAULT
	}
	c.setLocked(key, e, nowMs)
	c.written.Broadcast()
	c.push.notify(c, key, rec)
	return pos, true, nil
}

// sync makes a log position durable (FsyncAlways); a write whose sync
// fails is not acknowledged.
func (c *Center) sync(pos logPos) wire.Errno {
	switch err := c.wal.syncTo(pos); {
	case err == nil:
		return wire.OK
	case err == wire.ECLOSED:
		return wire.ECLOSED
	default:
		c.logFailure(err)
		return wire.EFAULT
	}
}

// logFailure logs the log's failure once: a failed write or fsync stays
// failed (logsync.go) until a snapshot succeeds, and every write meets it
// meanwhile. Each meeting is counted.
func (c *Center) logFailure(err error) {
	c.stats.logErrors.Add(1)
	if c.failLogged.CompareAndSwap(false, true) {
		c.log.Error("registry log failed; writes refused until a snapshot rewrites the store", "err", err.Error())
	}
}

// writeOp is one write made at this center.
type writeOp struct {
	key       string
	id        sdk.OpID   // the client operation (zero: none): a retry of it is answered, not applied again
	rec       sdk.Record // Version, Epoch, Op and ModifiedMs are filled in by write
	mustExist bool       // the entry must be live (deletes)
	check     bool       // the entry must be live at exactly expect (0: absent)
	expect    uint64
	rawCheck  bool // the entry, live or not, must be at exactly rawExpect
	rawExpect uint64
	dueOnly   bool // the entry must be past its TTL or lease (expiry)
	// owner, if not empty, is the address a client's registration or
	// deregistration came from: a live instance held must have been
	// registered from it, unless its lease has run out (ownedLocked).
	owner string
}

// ownedLocked reports whether a client's write from owner may replace the
// entry e held: any entry but a live instance, an instance registered
// from owner, or one whose lease has run out (its node gone, or started
// again at another address). The cluster key is shared, so a request's
// node id tells one key holder from another no better than its source
// address does; the address is what renewals go by. c.mu is held.
func (c *Center) ownedLocked(e *entry, owner string, nowMs int64) bool {
	return owner == "" || !e.live(nowMs) || e.kind != sdk.KindService || e.owner == owner || c.dueLocked(e)
}

// write makes a write at this center: it checks the condition against the
// store, replicates the new record to the other center and, once the
// other center has it (or is declared dead), applies it here, syncs the
// log and returns the new version. Writes of one key at this center are
// serialized; the other center refuses a replica that conflicts with a
// write it is making itself (see serveReplicate).
//
// A client operation (op.id) that this center finds among the operations
// it applied (opTable), made here or replicated from the other center, was
// applied before (an earlier attempt of the same call): it is answered
// with the version it made, once this center's log holds it on disk, and
// not applied again, whatever its condition says now.
func (c *Center) write(op *writeOp) (uint64, wire.Errno) {
	nowMs := c.clock.WallMs()
	c.mu.Lock()
	for {
		if c.mu.Closed {
			c.mu.Unlock()
			return 0, wire.ECLOSED
		}
		if _, busy := c.mu.inflight[op.key]; !busy {
			break
		}
		c.written.Wait()
	}
	cur := c.mu.st.get(op.key)
	if v, ok := c.mu.ops.find(op.id, op.key); ok {
		c.mu.Unlock()
		return c.applied(v)
	}
	live := cur.live(nowMs)
	var curVer uint64
	if cur != nil {
		curVer = cur.version
	}
	switch {
	case op.mustExist && !live:
		c.mu.Unlock()
		return 0, wire.ENOENT
	case !c.ownedLocked(cur, op.owner, nowMs):
		c.mu.Unlock()
		c.stats.notOwner.Add(1)
		return 0, wire.EPERM
	case op.check && op.expect == 0 && live,
		op.check && op.expect != 0 && (!live || curVer != op.expect):
		c.mu.Unlock()
		c.stats.conflicts.Add(1)
		return 0, wire.ECONFLICT
	case op.rawCheck && (cur == nil || curVer != op.rawExpect || cur.kind == sdk.KindTombstone),
		op.dueOnly && !c.dueLocked(cur):
		c.mu.Unlock()
		return 0, wire.ECONFLICT
	case cur == nil && c.mu.st.len() >= c.cfg.MaxKeys:
		c.mu.Unlock()
		return 0, wire.ENOSPC
	}
	op.rec.Version = sdk.VersionNext(curVer, c.cfg.Index)
	op.rec.Epoch = c.epoch
	op.rec.Op = op.id
	op.rec.ModifiedMs = nowMs
	rec := sdk.AppendRecord(make([]byte, 0, sdk.RecordSize(&op.rec)), &op.rec)
	c.mu.inflight[op.key] = op.rec.Version
	c.mu.Unlock()

	r := c.replicate(op.key, curVer, rec)
	if r.e == wire.ECONFLICT || r.e == wire.EAGAIN {
		// The other center holds a version this one did not see, or
		// may hold this very record (no verdict came back): take its
		// record of the key while the key is still in flight here, so
		// that no read here misses what a read there returns.
		c.fetch(op.key)
	}

	c.mu.Lock()
	if r.e == wire.ECONFLICT && c.mu.st.get(op.key) == cur {
		// Refused, yet nothing newer here: the other center is making
		// a write of the key that this one has not received. Until its
		// replica arrives, reads here still return the record this
		// write was checked against, so the refusal is not reported
		// before it is seen here; if it never is, the write reports
		// EAGAIN (not applied, and nothing to show it conflicted).
		if !c.waitChangeLocked(op.key, cur, c.cfg.ReplicateTimeout) {
			r.e = wire.EAGAIN
		}
	}
	delete(c.mu.inflight, op.key)
	c.written.Broadcast()
	if r.e != wire.OK {
		// The record taken may be this operation's, applied there by
		// this attempt or an earlier one.
		v, found := c.mu.ops.find(op.id, op.key)
		c.mu.Unlock()
		if found {
			return c.applied(v)
		}
		switch r.e {
		case wire.ECONFLICT:
			c.stats.conflicts.Add(1)
		case wire.EAGAIN:
			c.stats.again.Add(1)
		}
		return 0, r.e
	}
	pos, _, err := c.applyLocked(op.key, rec, nowMs)
	c.mu.Unlock()
	if err != nil {
		return 0, wire.AsErrno(err)
	}
	c.sendDue()
	if e := c.commit(pos, &r); e != wire.OK {
		if e == wire.EAGAIN {
			c.stats.again.Add(1)
		}
		return 0, e
	}
	c.stats.writes.Add(1)
	if r.alone {
		c.stats.writesAlone.Add(1)
	}
	return op.rec.Version, wire.OK
}

// waitChangeLocked waits, c.mu held, until key's entry is no longer cur
// or d has passed; it reports whether the entry changed.
func (c *Center) waitChangeLocked(key string, cur *entry, d time.Duration) bool {
	expired := false
	t := time.AfterFunc(d, func() {
		c.mu.Lock()
		expired = true
		c.written.Broadcast()
		c.mu.Unlock()
	})
	defer t.Stop()
	for c.mu.st.get(key) == cur && !expired && !c.mu.Closed {
		c.written.Wait()
	}
	return c.mu.st.get(key) != cur
}

// applied answers a client operation found applied before, at version v,
// once everything this center's log holds is on disk.
func (c *Center) applied(v uint64) (uint64, wire.Errno) {
	if e := c.sync(c.wal.end()); e != wire.OK {
		return 0, e
	}
	c.stats.retried.Add(1)
	return v, wire.OK
}

// replica is the outcome of replicating a write to the other center.
type replica struct {
	e     wire.Errno
	alone bool // no other center, or it is declared dead: nothing to wait for there
	// The other center's log position holding the record (its reply to
	// registry.CallReplicate); gen 0: nothing to wait for.
	inc, gen, off uint64
}

// replicate sends a write to the other center and waits for its verdict.
// The other center applies and logs the record before answering but does
// not wait for its disk: commit waits for that while this center syncs
// its own log. e is OK with alone set when there is no other center or it
// is declared dead; ECONFLICT when the other center refused; EAGAIN when
// it could not be reached in time but is not declared dead.
func (c *Center) replicate(key string, prev uint64, rec []byte) replica {
	if !c.cfg.Peer.IsValid() {
		return replica{alone: true}
	}
	if info, ok := c.ep.Peer(c.cfg.Peer); ok && info.State == rfc.PeerDead {
		return replica{alone: true}
	}
	var ps wire.Params
	ps.Reset(make([]byte, 2*registry.ParamU64Size+2*wire.ParamHdrSize+len(key)+len(rec)))
	ps.Uint64(uint64(c.cfg.Index))
	ps.Uint64(prev)
	ps.String(key)
	ps.Bytes(rec)
	var reply rfc.Reply
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ReplicateTimeout)
	defer cancel()
	switch e := wire.AsErrno(c.ep.Call(ctx, c.cfg.Peer, registry.CallReplicate, &ps, &reply)); e {
	case wire.OK:
		p := &reply.Packet
		if p.NParams() != 3 || p.Param(0).Type != wire.TypeUint64 || p.Param(1).Type != wire.TypeUint64 ||
			p.Param(2).Type != wire.TypeUint64 {
			// Applied there, but where it lies in its log is unknown.
			c.stats.malformed.Add(1)
			return replica{e: wire.EAGAIN}
		}
		return replica{inc: p.Param(0).Uint64(), gen: p.Param(1).Uint64(), off: p.Param(2).Uint64()}
	case wire.ENODEAD:
		return replica{alone: true}
	case wire.ECONFLICT:
		return replica{e: wire.ECONFLICT}
	case wire.EMSGSIZE, wire.EINVAL:
		return replica{e: e}
	default:
		return replica{e: wire.EAGAIN}
	}
}

// commit waits until a write applied here is durable: in this center's
// log and, if it was replicated, in the other center's. The two fsyncs
// run at the same time: the other center is asked (registry.CallLogSync, an
// asynchronous call) to answer once its own is done, and this goroutine
// runs this center's meanwhile. If the other center restarted meanwhile
// (ESTALE), its log failed, or it cannot be reached and is not declared
// dead, the write is applied here but not acknowledged: EAGAIN, as for a
// write whose replication failed.
func (c *Center) commit(pos logPos, r *replica) wire.Errno {
	if r.gen == 0 {
		return c.sync(pos)
	}
	var ps wire.Params
	ps.Reset(make([]byte, 4*registry.ParamU64Size))
	ps.Uint64(uint64(c.cfg.Index))
	ps.Uint64(r.inc)
	ps.Uint64(r.gen)
	ps.Uint64(r.off)
	remote := make(chan wire.Errno, 1)
	if err := c.ep.GoFunc(c.cfg.Peer, registry.CallLogSync, &ps, c.cfg.ReplicateTimeout, func(p *rfc.Pending) {
		remote <- wire.AsErrno(p.Err())
	}); err != nil {
		remote <- wire.AsErrno(err)
	}
	e := c.sync(pos)
	re := <-remote
	if e != wire.OK {
		return e
	}
	switch re {
	case wire.OK:
		return wire.OK
	case wire.ENODEAD:
		// Declared dead since it took the record: go on alone, as a
		// write that starts now would.
		r.alone = true
		return wire.OK
	default:
		return wire.EAGAIN
	}
}

// fetch takes key from the other center if its version there is newer,
// after the other center refused a write because it holds a version this
// center has not seen.
func (c *Center) fetch(key string) {
	if !c.cfg.Peer.IsValid() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ReplicateTimeout)
	defer cancel()
	var reply rfc.Reply
	if registry.ListCall(ctx, c.ep, c.cfg.Peer, key, "", 1, registry.ListTombstones, &reply) != nil {
		return
	}
	c.takeEntries(&reply.Packet, key, "")
}

// takeEntries applies the entries of a registry.CallList reply to a
// request that listed after after (versions decide); only keys starting
// with prefix are taken. It returns the count applied and the key to list
// after for the next page ("" on the last page). A reply whose header is
// malformed or whose next key is refused (registry.ListNext: following it
// would never end) is EPROTO, counted as malformed, and nothing of it is
// applied.
func (c *Center) takeEntries(p *wire.Packet, prefix, after string) (int, string, error) {
	nowMs := c.clock.WallMs()
	n := 0
	var pos logPos
	next, err := registry.ListNext(p, after)
	if err != nil {
		c.stats.malformed.Add(1)
		return 0, "", err
	}
	c.mu.Lock()
	for i := registry.ListFirstEntry; i+1 < p.NParams(); i += 2 {
		kv, rv := p.Param(i), p.Param(i+1)
		if kv.Type != wire.TypeString || rv.Type != wire.TypeBytes {
			c.stats.malformed.Add(1)
			break
		}
		key := kv.Str()
		if len(key) < len(prefix) || key[:len(prefix)] != prefix {
			continue
		}
		p2, ok, err := c.applyLocked(key, append([]byte(nil), rv.Bytes()...), nowMs)
		if err != nil {
			if err == wire.EPROTO {
				c.stats.malformed.Add(1)
			}
			continue
		}
		if ok {
			n++
			pos = p2
		}
	}
	c.mu.Unlock()
	c.sendDue()
	c.sync(pos)
	return n, next, nil
}

// peerChanged follows the engine's peer states: the other center coming
// back starts anti-entropy; a dead node's instances are queued for
// removal. It runs on an engine goroutine and only hands work off.
func (c *Center) peerChanged(info rfc.PeerInfo) {
	if c.fromPeer(info.Addr) {
		switch info.State {
		case rfc.PeerAlive:
			c.kickSync()
		case rfc.PeerDead:
			c.log.Warn("registry: other center declared dead, going on alone", "peer", info.Addr.String())
		}
		return
	}
	if info.State != rfc.PeerDead {
		return
	}
	select {
	case c.deadQ <- info.Addr:
	default:
		c.stats.deadDropped.Add(1)
	}
}

func (c *Center) kickSync() {
	select {
	case c.syncKick <- struct{}{}:
	default:
	}
}
