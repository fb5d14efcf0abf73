package center

import (
	"context"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"fastcall/node/registry"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// Handlers of the client calls. Each checks its arguments (the engine has
// checked the schema), counts what is malformed and answers an error
// number; none panics on network input.

// entryFits reports whether key and rec fit one push datagram.
func (c *Center) entryFits(keyLen, recLen int) bool {
	return keyLen+recLen <= registry.MaxEntry(c.ep.Config().MaxDatagram)
}

func (c *Center) closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.Closed
}

func (c *Center) serveGet(req *rfc.Request, reply *wire.Params) wire.Errno {
	if !c.serving() {
		return wire.EBUSY
	}
	key := req.Param(0).Str()
	nowMs := c.clock.WallMs()
	c.mu.Lock()
	defer c.mu.Unlock()
	// A write of the key at this center that is waiting for the other
	// center may already be applied and read there: wait for its
	// outcome here, so that no read here returns what a read there
	// already saw replaced.
	for {
		if c.mu.Closed {
			return wire.ECLOSED
		}
		if _, busy := c.mu.inflight[key]; !busy {
			break
		}
		c.written.Wait()
	}
	e := c.mu.st.get(key)
	if !e.live(nowMs) {
		return wire.ENOENT
	}
	reply.Bytes(e.rec)
	return wire.OK
}

// validKVKey reports whether key is a key/value key a client may write.
func validKVKey(key string) bool {
	return len(key) > len(sdk.KVPrefix) && len(key) <= registry.MaxKeyLen && strings.HasPrefix(key, sdk.KVPrefix)
}

func (c *Center) servePut(req *rfc.Request, reply *wire.Params) wire.Errno {
	key := req.Param(0).Str()
	value := req.Param(1).Bytes()
	expect, ttlMs, mode := req.Param(2).Uint64(), req.Param(3).Uint64(), req.Param(4).Uint64()
	if !validKVKey(key) || mode > registry.PutCAS || ttlMs > uint64(registry.MaxTTL/time.Millisecond) {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	op := writeOp{key: key, id: registry.OpOf(req), check: mode == registry.PutCAS, expect: expect}
	op.rec = sdk.Record{Kind: sdk.KindKV, Node: req.Src, Body: append([]byte(nil), value...)}
	if ttlMs != 0 {
		op.rec.ExpireMs = c.clock.WallMs() + int64(ttlMs)
	}
	if !c.entryFits(len(key), sdk.RecordSize(&op.rec)) {
		return wire.EMSGSIZE
	}
	return c.writeAnswer(&op, reply)
}

func (c *Center) serveDelete(req *rfc.Request, reply *wire.Params) wire.Errno {
	key := req.Param(0).Str()
	expect := req.Param(1).Uint64()
	if !validKVKey(key) {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	op := deleteOp(key, expect, req.Src, registry.OpOf(req))
	return c.writeAnswer(&op, reply)
}

// deleteOp is the write of a tombstone for a live key; expect, if not 0,
// must be its version. id names the client operation.
func deleteOp(key string, expect uint64, node uint32, id sdk.OpID) writeOp {
	op := writeOp{key: key, id: id, mustExist: true, check: expect != 0, expect: expect}
	op.rec = sdk.Record{Kind: sdk.KindTombstone, Node: node}
	return op
}

// writeAnswer runs a client's write once the center serves clients
// (EBUSY before) and answers the version it made.
func (c *Center) writeAnswer(op *writeOp, reply *wire.Params) wire.Errno {
	if !c.serving() {
		return wire.EBUSY
	}
	v, e := c.write(op)
	if e == wire.OK {
		reply.Uint64(v)
	}
	return e
}

func (c *Center) serveList(req *rfc.Request, reply *wire.Params) wire.Errno {
	prefix, after := req.Param(0).Str(), req.Param(1).Str()
	limit, flags := req.Param(2).Uint64(), req.Param(3).Uint64()
	if limit == 0 || limit > registry.MaxListEntries {
		limit = registry.MaxListEntries
	}
	nowMs := c.clock.WallMs()
	room := reply.Cap() - registry.ParamU64Size - wire.ParamHdrSize
	c.mu.Lock()
	if c.mu.Closed {
		c.mu.Unlock()
		return wire.ECLOSED
	}
	pg := listPage(c.mu.st, prefix, after, int(limit), flags&registry.ListTombstones != 0, nowMs, room)
	c.mu.Unlock()
	if pg.more && pg.examined == 0 {
		// The reply room is below one entry: the request was not padded.
		return wire.EMSGSIZE
	}
	if pg.more {
		reply.Uint64(1)
	} else {
		reply.Uint64(0)
	}
	if pg.more && pg.skipped {
		reply.String(pg.next)
	} else {
		reply.String("")
	}
	for i, k := range pg.keys {
		reply.String(k)
		reply.Bytes(pg.recs[i])
	}
	return wire.OK
}

// listResult is one CallList page: the entries it returns, whether the
// listing goes on, and after which key.
type listResult struct {
	keys     []string
	recs     [][]byte
	more     bool
	next     string // the last key examined
	skipped  bool   // next was skipped as dead, not returned
	examined int    // keys examined (returned or skipped)
}

// listPage builds the CallList page of st's keys starting with prefix,
// strictly after after: at most limit entries, dead ones (tombstones and
// expired entries) skipped unless tombstones, within room bytes of
// parameters beyond more and the next key's header. It examines at most
// registry.ListScan keys, so that the center's lock, which the caller
// holds, is held for a bounded walk however many dead entries the prefix
// holds. A page whose last examined key was skipped carries that key as
// its next key (it is kept within room with the entries); otherwise the
// next key is empty and the listing resumes after the last entry, so an
// entry that fits a push datagram always fits a page alone.
func listPage(st *store, prefix, after string, limit int, tombstones bool, nowMs int64, room int) listResult {
	var pg listResult
	used := 0 // entries' bytes
	st.scan(prefix, after, func(k string, e *entry) bool {
		if pg.examined >= registry.ListScan {
			pg.more = true
			return false
		}
		if !tombstones && !e.live(nowMs) {
			if used+len(k) > room {
				pg.more = true
				return false
			}
			pg.examined++
			pg.next, pg.skipped = k, true
			return true
		}
		need := registry.ListEntryExtra + len(k) + len(e.rec)
		if len(pg.keys) >= limit || used+need > room {
			pg.more = true
			return false
		}
		used += need
		pg.examined++
		pg.next, pg.skipped = k, false
		pg.keys = append(pg.keys, k)
		pg.recs = append(pg.recs, e.rec)
		return true
	})
	return pg
}

func (c *Center) serveRegister(req *rfc.Request, reply *wire.Params) wire.Errno {
	name := req.Param(0).Str()
	addr, meta := req.Param(1).Bytes(), req.Param(2).Bytes()
	leaseMs := req.Param(3).Uint64()
	if req.Src == 0 || name == "" || len(name) > registry.MaxNameLen || strings.IndexByte(name, sdk.InstanceSep) >= 0 ||
		!utf8.ValidString(name) {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	if leaseMs == 0 {
		leaseMs = uint64(c.cfg.DefaultLease.Milliseconds())
	}
	if leaseMs > uint64(c.cfg.MaxLease.Milliseconds()) {
		return wire.EINVAL
	}
	key := sdk.ServiceKey(name, req.Src)
	owner := req.From.String()
	op := writeOp{key: key, id: registry.OpOf(req), owner: owner}
	op.rec = sdk.Record{Kind: sdk.KindService, Node: req.Src, LeaseMs: uint32(leaseMs),
		Addr: append([]byte(nil), addr...), Owner: []byte(owner), Body: append([]byte(nil), meta...)}
	if len(key) > registry.MaxKeyLen || len(addr) > registry.MaxAddrLen || !c.entryFits(len(key), sdk.RecordSize(&op.rec)) {
		return wire.EMSGSIZE
	}
	return c.writeAnswer(&op, reply)
}

func (c *Center) serveDeregister(req *rfc.Request, reply *wire.Params) wire.Errno {
	name := req.Param(0).Str()
	if req.Src == 0 || name == "" || len(name) > registry.MaxNameLen || strings.IndexByte(name, sdk.InstanceSep) >= 0 {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	op := deleteOp(sdk.ServiceKey(name, req.Src), 0, req.Src, registry.OpOf(req))
	op.owner = req.From.String()
	return c.writeAnswer(&op, reply)
}

// renewOwner pushes back the lease deadline of every instance registered
// from owner and returns how many there were. It reads the clock under
// c.mu, as a registration does (applyLocked): a reading taken before
// waiting for the lock could be older than that of a registration of the
// same instance that held the lock meanwhile, and would move the
// deadline it set back.
func (c *Center) renewOwner(owner string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	monoNs := c.clock.MonoNs()
	n := 0
	for k := range c.mu.owners[owner] {
		if e := c.mu.st.get(k); e != nil && e.kind == sdk.KindService {
			e.leaseDue = monoNs + e.leaseMs*int64(time.Millisecond)
			n++
		}
	}
	return n
}

func (c *Center) serveRenew(req *rfc.Request, reply *wire.Params) wire.Errno {
	if c.closed() {
		return wire.ECLOSED
	}
	owner := req.From.String()
	n := c.renewOwner(owner)
	if c.cfg.Peer.IsValid() {
		// Forward the renewal so that the other center does not expire
		// the lease; a lost forward is made up by the next renewal.
		var ps wire.Params
		buf := make([]byte, 2*registry.ParamU64Size+len(owner)+wire.ParamHdrSize)
		ps.Reset(buf)
		ps.Uint64(uint64(c.cfg.Index))
		ps.String(owner)
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ReplicateTimeout)
		c.ep.Call(ctx, c.cfg.Peer, registry.CallTouch, &ps, nil)
		cancel()
	}
	if n == 0 {
		return wire.ENOENT
	}
	reply.Uint64(uint64(n))
	return wire.OK
}

// fromPeer reports whether from is the configured peer center. The calls
// between centers (registry.CallReplicate, CallTouch, CallLogSync) are
// answered only for it: any other sender, keyed or not, is refused EPERM,
// so a node cannot keep a dead owner's leases alive or write records past
// the write rules. A center without a peer (or with port 0) refuses them
// all. Peer is compared in the engine's form of a sender (rfc.PeerAddr:
// IPv4-mapped unmapped, a link-local zone as its interface's index).
func (c *Center) fromPeer(from netip.AddrPort) bool {
	p := c.cfg.Peer
	return p.IsValid() && p.Port() != 0 && rfc.PeerAddr(from) == rfc.PeerAddr(p)
}

// checkPeerCall is the first check of every call between centers, whose
// first parameter is the sender's center index: EPERM (counted in
// NotPeer) unless the call comes from the peer center (fromPeer), EINVAL
// (counted as malformed) unless the index is the other center's.
func (c *Center) checkPeerCall(req *rfc.Request) wire.Errno {
	if !c.fromPeer(req.From) {
		c.stats.notPeer.Add(1)
		return wire.EPERM
	}
	if sender := req.Param(0).Uint64(); sender > 1 || uint8(sender) == c.cfg.Index {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	return wire.OK
}

func (c *Center) serveTouch(req *rfc.Request, reply *wire.Params) wire.Errno {
	if e := c.checkPeerCall(req); e != wire.OK {
		return e
	}
	reply.Uint64(uint64(c.renewOwner(req.Param(1).Str())))
	return wire.OK
}

// serveReplicate applies a write of the other center. Rules, with cur the
// version held here, prev the version the sender's write replaces and new
// the version it makes:
//
//   - this center is writing the key itself and is the senior (index 0):
//     if the replica replaces the very version this center's write makes
//     (the junior took that write's replica and wrote on top of it before
//     this center heard back), wait for this center's write to end and
//     go on with the rules below; otherwise ECONFLICT (the junior's write
//     loses; the senior's replica is let through at the junior);
//   - the record held has the replica's stamp (version and epoch): a
//     duplicate, OK. The same version with another epoch is another
//     record: the sender restarted, lost the record held here and made
//     its version again; it falls under the last rule, since new > prev;
//   - cur <= prev: apply (cur < prev means this center missed writes the
//     sender saw: it catches up);
//   - otherwise this center holds a version the sender did not see:
//     ECONFLICT, and the sender fetches it.
//
// An OK reply carries the log position that holds the record; the log
// syncer starts on it at once, and the sender's registry.CallLogSync waits for it.
func (c *Center) serveReplicate(req *rfc.Request, reply *wire.Params) wire.Errno {
	if e := c.checkPeerCall(req); e != wire.OK {
		return e
	}
	prev, key, recv := req.Param(1).Uint64(), req.Param(2).Str(), req.Param(3).Bytes()
	if len(key) == 0 || len(key) > registry.MaxKeyLen {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	var r sdk.Record
	if sdk.ParseRecord(recv, &r) != wire.OK {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	rec := append([]byte(nil), recv...)
	nowMs := c.clock.WallMs()
	c.mu.Lock()
	if c.mu.Closed {
		c.mu.Unlock()
		return wire.ECLOSED
	}
	for c.cfg.Index == 0 {
		pending, busy := c.mu.inflight[key]
		if !busy {
			break
		}
		if pending != prev {
			c.mu.Unlock()
			c.stats.replicaRefused.Add(1)
			return wire.ECONFLICT
		}
		// The reply that ends this center's write is on its way (or
		// its replicate call times out): neither waits for this
		// handler.
		c.written.Wait()
		if c.mu.Closed {
			c.mu.Unlock()
			return wire.ECLOSED
		}
	}
	var cur uint64
	var curStamp sdk.Stamp
	if e := c.mu.st.get(key); e != nil {
		cur, curStamp = e.version, e.stamp()
	}
	switch {
	case cur != 0 && curStamp == (sdk.Stamp{Version: r.Version, Epoch: r.Epoch}):
		// A duplicate: the record was logged before; everything logged
		// so far covers it.
	case cur > prev:
		c.mu.Unlock()
		c.stats.replicaRefused.Add(1)
		return wire.ECONFLICT
	default:
		if _, _, err := c.applyLocked(key, rec, nowMs); err != nil {
			c.mu.Unlock()
			return wire.AsErrno(err)
		}
		c.stats.replicated.Add(1)
	}
	c.mu.Unlock()
	var pos logPos
	if c.cfg.Fsync == FsyncAlways {
		pos = c.wal.end()
		c.wal.requestSync()
	}
	c.sendDue()
	reply.Uint64(c.wal.incarnation)
	reply.Uint64(pos.gen)
	reply.Uint64(uint64(pos.off))
	return wire.OK
}

// serveLogSync answers once this center's log is durable up to a position
// its registry.CallReplicate reply gave (see registry.CallLogSync). It runs on the reader
// goroutine and never blocks: the fsync that covers the position replies.
func (c *Center) serveLogSync(req *rfc.Request, d *rfc.Deferred) wire.Errno {
	if e := c.checkPeerCall(req); e != wire.OK {
		return e
	}
	inc := req.Param(1).Uint64()
	pos := logPos{gen: req.Param(2).Uint64(), off: int64(req.Param(3).Uint64())}
	if inc != c.wal.incarnation {
		return wire.ESTALE
	}
	if gen := c.wal.endGen.Load(); pos.gen == 0 || pos.off < logHdrSize || pos.gen > gen ||
		(pos.gen == gen && pos.off > c.wal.endSize.Load()) {
		c.stats.malformed.Add(1)
		return wire.EINVAL
	}
	err, now := c.wal.whenSynced(pos, func(err error) { d.Reply(syncErrno(err)) })
	if !now {
		return wire.OK
	}
	if err != nil {
		return syncErrno(err)
	}
	d.Reply(wire.OK)
	return wire.OK
}

// syncErrno is the error number for the outcome of a log sync.
func syncErrno(err error) wire.Errno {
	switch err {
	case nil:
		return wire.OK
	case wire.ECLOSED:
		return wire.ECLOSED
	default:
		return wire.EFAULT
	}
}
