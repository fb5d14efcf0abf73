package client

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// Change is one change a Watch delivers.
type Change struct {
	Key     string // full key ("svc/...", "kv/...")
	Deleted bool
	Version uint64 // 0 for a deletion found by a resynchronization
	// Record is the entry's record (sdk format), nil for a deletion found
	// by a resynchronization. It is valid only during the callback.
	Record []byte
	// Resync is set for changes found by a resynchronization (a full
	// listing) rather than pushed.
	Resync bool
}

// verState is what a Watch knows of one key: the stamp (version and
// epoch) of the record it holds, which names that record.
type verState struct {
	stamp sdk.Stamp
	live  bool
}

// Watch follows the prefixes it was opened with: it subscribes at a
// center, lists the prefixes once, then applies the center's pushes in
// sequence. A gap in the sequence, an unknown stream, or a center that
// stops answering or answers what it cannot follow (EPROTO) makes it
// resynchronize (at the other center for the last two) on a new stream:
// it subscribes again, lists again, and reports as deleted the keys that
// are gone. Within a stream, changes of a key are
// applied in version order and an older version is ignored; a
// resynchronization takes the center's record of every key, even one
// older than the record held (see applyLocked).
//
// Goroutines: one, started by Client.Watch, for subscribing, listing and
// keepalives; pushes are applied on the endpoint's worker goroutines. fn
// runs under the Watch's lock, one change at a time: it must be quick and
// must not call the Watch's methods.
type Watch struct {
	c        *Client
	prefixes []string
	fn       func(Change)

	mu struct {
		sync.Mutex
		stream    uint64         // current stream id
		at        netip.AddrPort // the center the stream is at, as rfc.PeerAddr names it: only it pushes
		cookie    uint64         // the stream's cookie (CallSubscribe reply), echoed by CallSubCheck
		expect    uint64         // next sequence number expected
		center    int            // index of the center the stream is at
		versions  map[string]verState
		resyncing bool
		touched   map[string]struct{} // keys pushed during a resynchronization
	}
	kick   chan struct{} // resynchronize now; capacity 1
	synced atomic.Bool   // a resynchronization completed and no gap seen since
	err    atomic.Value  // last permanent error (wire.Errno)

	pushes, dups, gaps, resyncs, malformed, notCenter atomic.Uint64

	done chan struct{}
	once sync.Once // Close
	wg   sync.WaitGroup
}

// WatchStats is a snapshot of a Watch's counters.
type WatchStats struct {
	Pushes, Dups, Gaps, Resyncs uint64
	// Malformed counts pushes refused as malformed and listing pages
	// refused (EPROTO) by a resynchronization, which then fails.
	Malformed uint64
	// NotCenter counts pushes refused (EPERM) because they did not come
	// from the center the stream is subscribed at.
	NotCenter uint64
	Keys      int
	Synced    bool
}

// Watch opens a watch of the given prefixes of the namespace (for example
// "svc/" or "kv/route/") and calls fn for every change, starting with the
// entries present. Close it when done.
func (c *Client) Watch(prefixes []string, fn func(Change)) (*Watch, error) {
	return c.watch(prefixes, fn, nil)
}

// WatchFrom is Watch for a subscriber that already holds records (an
// agent's map): known maps each key held to the stamp of its record, so
// that the first listing reports only what differs.
func (c *Client) WatchFrom(prefixes []string, fn func(Change), known map[string]sdk.Stamp) (*Watch, error) {
	vs := make(map[string]verState, len(known))
	for k, st := range known {
		vs[k] = verState{stamp: st, live: true}
	}
	return c.watch(prefixes, fn, vs)
}

// watch opens a Watch that starts from known versions.
func (c *Client) watch(prefixes []string, fn func(Change), known map[string]verState) (*Watch, error) {
	if len(prefixes) == 0 || fn == nil {
		return nil, wire.EINVAL
	}
	c.pushOnce.Do(func() {
		c.pushErr = c.ep.Register(registry.CallPush, "reg-push", registry.SchemaPush, rfc.Idempotent, c.servePush)
	})
	if c.pushErr != nil {
		return nil, c.pushErr
	}
	w := &Watch{c: c, prefixes: append([]string(nil), prefixes...), fn: fn,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.mu.versions = known
	if w.mu.versions == nil {
		w.mu.versions = make(map[string]verState)
	}
	w.mu.center = int(c.cur.Load()) % len(c.cfg.Centers)
	w.kick <- struct{}{}
	// The Watch's one goroutine starts here.
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// Close stops the watch and tells its center, best effort. It may be
// called more than once, from several goroutines at once; each call
// returns once the watch is closed.
func (w *Watch) Close() {
	w.once.Do(w.close)
}

func (w *Watch) close() {
	close(w.done)
	w.wg.Wait()
	w.mu.Lock()
	id, center := w.mu.stream, w.mu.center
	w.mu.Unlock()
	w.c.watchMu.Lock()
	delete(w.c.watches, id)
	w.c.watchMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	w.c.callAt(ctx, w.c.cfg.Centers[center], registry.CallUnsubscribe, func(ps *wire.Params) { ps.Uint64(id) }, nil)
	cancel()
}

// Synced reports whether the watch has completed a resynchronization and
// seen no gap since.
func (w *Watch) Synced() bool { return w.synced.Load() }

// Err returns the last permanent error met while subscribing (ENOSPC:
// past the center's bounds), nil if none.
func (w *Watch) Err() error {
	if e, ok := w.err.Load().(wire.Errno); ok && e != wire.OK {
		return e
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (w *Watch) Stats() WatchStats {
	w.mu.Lock()
	n := 0
	for _, v := range w.mu.versions {
		if v.live {
			n++
		}
	}
	w.mu.Unlock()
	return WatchStats{Pushes: w.pushes.Load(), Dups: w.dups.Load(), Gaps: w.gaps.Load(),
		Resyncs: w.resyncs.Load(), Malformed: w.malformed.Load(), NotCenter: w.notCenter.Load(), Keys: n,
		Synced: w.synced.Load()}
}

func (w *Watch) kickResync() {
	w.synced.Store(false)
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// loop resynchronizes when asked and checks the stream every keepalive.
// When both are due at once, the resynchronization runs and the
// keepalive is skipped (a new stream needs none): one order whatever
// select picks, so that a simulated run replays.
func (w *Watch) loop() {
	defer w.wg.Done()
	tick := time.NewTicker(w.c.cfg.KeepaliveEvery)
	defer tick.Stop()
	for {
		kicked := false
		select {
		case <-w.done:
			return
		case <-w.kick:
			kicked = true
		case <-tick.C:
			select {
			case <-w.kick:
				kicked = true
			default:
			}
		}
		if !kicked && !w.synced.Load() {
			w.kickResync()
			continue
		}
		if kicked {
			select {
			case <-tick.C:
			default:
			}
			if e := w.resync(); e != wire.OK {
				// Try again at the next keepalive, at the other
				// center if this one failed.
				if centerFailed(e) || e == wire.EAGAIN {
					w.switchCenter()
				}
				w.synced.Store(false)
			}
			continue
		}
		w.keepalive()
	}
}

// keepalive checks the stream with its center (CallSubCheck), and
// resynchronizes if the center does not know it or does not answer.
func (w *Watch) keepalive() {
	w.mu.Lock()
	id, cookie, center := w.mu.stream, w.mu.cookie, w.mu.center
	w.mu.Unlock()
	switch e := w.subCheck(w.c.cfg.Centers[center], id, cookie); {
	case e == wire.OK:
	case centerFailed(e):
		w.switchCenter()
		w.kickResync()
	default:
		w.kickResync()
	}
}

// subCheck sends CallSubCheck for stream id with its cookie: it renews
// the stream and, the first time, proves to the center that this watch
// reads at its address, so that pushes start.
func (w *Watch) subCheck(dst netip.AddrPort, id, cookie uint64) wire.Errno {
	ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.AttemptTimeout)
	err := w.c.callAt(ctx, dst, registry.CallSubCheck, func(ps *wire.Params) {
		ps.Uint64(id)
		ps.Uint64(cookie)
	}, nil)
	cancel()
	return wire.AsErrno(err)
}

// centerFailed reports whether e from a center makes a Watch go to the
// other center: the center does not answer (failover), or it answers
// what the Watch cannot follow (EPROTO: a malformed reply, or a listing
// page whose next key does not move on, registry.ListNext), which it may
// answer again at every try, so that trying it again would keep the
// Watch unsynced while the other center serves.
func centerFailed(e wire.Errno) bool {
	return failover(e) || e == wire.EPROTO
}

func (w *Watch) switchCenter() {
	if len(w.c.cfg.Centers) < 2 {
		return
	}
	w.mu.Lock()
	w.mu.center = 1 - w.mu.center
	w.mu.Unlock()
}

// resync opens a new stream, subscribes its prefixes, proves the stream
// with its cookie (CallSubCheck) so that the center pushes, and lists the
// prefixes.
func (w *Watch) resync() wire.Errno {
	w.resyncs.Add(1)
	id := w.c.cfg.IDs()
	w.mu.Lock()
	old, center := w.mu.stream, w.mu.center
	w.mu.stream = id
	w.mu.at = rfc.PeerAddr(w.c.cfg.Centers[center])
	w.mu.cookie = 0
	w.mu.expect = 1
	w.mu.resyncing = true
	w.mu.touched = make(map[string]struct{})
	w.mu.Unlock()
	w.c.watchMu.Lock()
	delete(w.c.watches, old)
	w.c.watches[id] = w
	w.c.watchMu.Unlock()

	dst := w.c.cfg.Centers[center]
	if old != 0 {
		// The old stream counts against this address's bound at the
		// center until it expires: close it first, best effort, so that
		// resyncs in a row do not lock this watch out.
		ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.AttemptTimeout)
		w.c.callAt(ctx, dst, registry.CallUnsubscribe, func(ps *wire.Params) { ps.Uint64(old) }, nil)
		cancel()
	}
	var cookie uint64
	for _, p := range w.prefixes {
		ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.AttemptTimeout)
		err := w.c.callAt(ctx, dst, registry.CallSubscribe, func(ps *wire.Params) {
			ps.Uint64(id)
			ps.String(p)
		}, func(pk *wire.Packet) error {
			if pk.NParams() != 2 || pk.Param(1).Type != wire.TypeUint64 {
				return wire.EPROTO
			}
			cookie = pk.Param(1).Uint64()
			return nil
		})
		cancel()
		if e := wire.AsErrno(err); e != wire.OK {
			if !centerFailed(e) {
				w.err.Store(e)
			}
			return e
		}
	}
	w.mu.Lock()
	if w.mu.stream != id {
		w.mu.Unlock()
		return wire.EAGAIN
	}
	w.mu.cookie = cookie
	w.mu.Unlock()
	// Prove the stream now, before listing: what changes from here on is
	// pushed. Should this be lost, the next keepalive proves it.
	if e := w.subCheck(dst, id, cookie); e != wire.OK {
		return e
	}
	seen := make(map[string]struct{})
	var page []registry.RawEntry
	for _, p := range w.prefixes {
		after := ""
		for {
			select {
			case <-w.done:
				return wire.ECLOSED
			default:
			}
			var next string
			maxDg := w.c.ep.Config().MaxDatagram
			ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.AttemptTimeout)
			err := w.c.callAt(ctx, dst, registry.CallList, func(ps *wire.Params) {
				registry.BuildList(ps, p, after, 0, registry.ListTombstones, maxDg)
			}, func(pk *wire.Packet) error {
				var e error
				page, next, e = registry.ReadList(pk, after, page[:0])
				if e != nil {
					// A malformed page, or one whose next key does
					// not move on (registry.ListNext): following it
					// would list without end.
					w.malformed.Add(1)
				}
				return e
			})
			cancel()
			if e := wire.AsErrno(err); e != wire.OK {
				return e
			}
			w.mu.Lock()
			if w.mu.stream != id {
				w.mu.Unlock()
				return wire.EAGAIN
			}
			for _, r := range page {
				seen[r.Key] = struct{}{}
				if _, t := w.mu.touched[r.Key]; !t {
					w.applyLocked(r.Key, r.Record, true)
				}
			}
			w.mu.Unlock()
			if next == "" {
				break
			}
			after = next
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.stream != id {
		return wire.EAGAIN
	}
	for k, v := range w.mu.versions {
		_, s := seen[k]
		_, t := w.mu.touched[k]
		if s || t || !w.matches(k) {
			continue
		}
		if v.live {
			w.fn(Change{Key: k, Deleted: true, Resync: true})
		}
		delete(w.mu.versions, k)
	}
	// Deleted keys were remembered only to order the listing against the
	// pushes; from now on pushes arrive in order.
	for k, v := range w.mu.versions {
		if !v.live {
			delete(w.mu.versions, k)
		}
	}
	w.mu.resyncing = false
	w.mu.touched = nil
	w.synced.Store(true)
	w.err.Store(wire.OK)
	return wire.OK
}

func (w *Watch) matches(key string) bool {
	for _, p := range w.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// applyLocked applies one record; w.mu is held. Within a stream stamps
// (version, then epoch) only grow, so a record not newer than the one
// held is ignored; a record with the stamp held is the record held. During a
// resynchronization, though, a version held from before (an older stream,
// or the map the agent started from) is not trusted until the new stream
// confirms it: a center that crashed may have pushed writes it never got
// to disk and lost them, and it may make the same version numbers again
// for other records. So until a key is confirmed (listed, or pushed on
// the new stream) what the center sends replaces what is held, older or
// not; a listed key is applied only if no push touched it first.
func (w *Watch) applyLocked(key string, rec []byte, resync bool) {
	st := sdk.RecordStamp(rec)
	ver := st.Version
	live := sdk.RecordKind(rec) != sdk.KindTombstone
	cur, ok := w.mu.versions[key]
	confirmed := !w.mu.resyncing
	if !confirmed && !resync {
		_, confirmed = w.mu.touched[key]
		w.mu.touched[key] = struct{}{}
	}
	switch {
	case ok && confirmed && cur.stamp.Compare(st) >= 0:
		return
	case ok && cur.stamp == st && cur.live == live:
		return
	}
	if !live {
		if w.mu.resyncing {
			w.mu.versions[key] = verState{stamp: st}
		} else {
			delete(w.mu.versions, key)
		}
		if ok && cur.live {
			w.fn(Change{Key: key, Deleted: true, Version: ver, Record: rec, Resync: resync})
		}
		return
	}
	w.mu.versions[key] = verState{stamp: st, live: true}
	w.fn(Change{Key: key, Version: ver, Record: rec, Resync: resync})
}

// servePush applies a push batch to the watch of its stream.
func (c *Client) servePush(req *rfc.Request, reply *wire.Params) wire.Errno {
	id, first, count := req.Param(0).Uint64(), req.Param(1).Uint64(), req.Param(2).Uint64()
	batch := req.Param(3).Bytes()
	c.watchMu.RLock()
	w := c.watches[id]
	c.watchMu.RUnlock()
	if w == nil {
		return wire.ESTALE
	}
	return w.onPush(req.From, id, first, count, batch)
}

// onPush applies a push on stream id from the address from. Stream ids
// travel in the clear: a push from any address but the stream's center
// is refused (EPERM, counted in NotCenter), or a sender that named the
// stream could write records into the watch past the centers' write
// rules and move the expected sequence number past the center's next
// pushes, which would then be dropped as duplicates.
func (w *Watch) onPush(from netip.AddrPort, id, first, count uint64, batch []byte) wire.Errno {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.stream != id {
		return wire.ESTALE
	}
	if from != w.mu.at {
		w.notCenter.Add(1)
		return wire.EPERM
	}
	if first > w.mu.expect {
		w.gaps.Add(1)
		w.kickResync()
		return wire.EAGAIN
	}
	if first+count <= w.mu.expect && !(count == 0 && first == w.mu.expect) {
		w.dups.Add(1)
		return wire.OK
	}
	skip := w.mu.expect - first
	// Check the whole batch before applying any of it.
	off := 0
	for i := uint64(0); i < count; i++ {
		k, r, next := registry.NextChange(batch, off)
		if next < 0 || sdk.ParseRecord(r, new(sdk.Record)) != wire.OK || len(k) == 0 {
			w.malformed.Add(1)
			w.kickResync()
			return wire.EPROTO
		}
		off = next
	}
	if off != len(batch) {
		w.malformed.Add(1)
		w.kickResync()
		return wire.EPROTO
	}
	off = 0
	for i := uint64(0); i < count; i++ {
		k, r, next := registry.NextChange(batch, off)
		off = next
		if i < skip {
			continue
		}
		w.applyLocked(string(k), r, false)
	}
	w.mu.expect = first + count
	w.pushes.Add(1)
	return wire.OK
}
