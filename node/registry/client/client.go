package client

import (
	"context"
	"log/slog"
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

// ClientConfig configures a Client.
type ClientConfig struct {
	// Centers are the addresses of the registry centers (one or two).
	Centers []netip.AddrPort
	// AttemptTimeout bounds one attempt at one center (default 500ms);
	// the context bounds the whole call, failovers and retries included.
	AttemptTimeout time.Duration
	// KeepaliveEvery is how often a Watch checks its stream with the
	// center (default 250ms); a center that stopped knowing the stream,
	// or stopped answering, makes the Watch resynchronize, at the other
	// center if need be.
	KeepaliveEvery time.Duration
	// IDs draws the client's id and its watches' stream ids; nil means
	// registry.RandomID.
	IDs registry.IDSource
	// Logger, if not nil, receives a warning when no center answers
	// (once per outage, at most once per OutageLogEvery) and a notice
	// when one answers again.
	Logger *slog.Logger
}

// Client defaults.
const (
	DefaultAttemptTimeout = 500 * time.Millisecond
	DefaultKeepaliveEvery = 250 * time.Millisecond
	// A call waits between retries of EAGAIN, and after every round in
	// which each center failed (declared dead, busy, closed, timed out),
	// for a jittered backoff doubling from minRetryBackoff up to
	// maxRetryBackoff, so that centers failing at once are not called in
	// a busy loop.
	minRetryBackoff = time.Millisecond
	maxRetryBackoff = 64 * time.Millisecond
)

// DefaultClientConfig returns the defaults for the given centers.
func DefaultClientConfig(centers ...netip.AddrPort) ClientConfig {
	return ClientConfig{Centers: centers, AttemptTimeout: DefaultAttemptTimeout, KeepaliveEvery: DefaultKeepaliveEvery}
}

// Client talks to the registry centers from an rfc.Endpoint. It fails over
// between the centers by itself: a center that is declared dead, times
// out, or is busy is left for the other one, which stays the preferred
// center until it fails in turn. Writes refused with EAGAIN (the center
// could not reach the other center, which is not yet declared dead) are
// retried with a short backoff. All methods are safe for concurrent use.
//
// Every write (Put, CAS, Delete, Register, Deregister) is one operation,
// named by the Client's id and a number it never uses again (sdk.OpID),
// and every attempt of it, at either center, carries that name: a center
// that finds the operation applied before answers with the version it
// made instead of applying it again or refusing it. ECONFLICT and ENOENT
// are definite: the write was not applied. When an earlier attempt may
// have been applied and a later one is refused with ECONFLICT or ENOENT
// without the operation being found, the outcome is unknown and the
// write returns ETIMEDOUT. Any other error of a write (ETIMEDOUT,
// ENODEAD, EAGAIN, ECANCELED, EFAULT, ECLOSED) also leaves its outcome
// unknown: it may have been applied. Watches of one Client share the
// endpoint's push call number, so an endpoint has at most one Client
// that watches.
type Client struct {
	ep      *rfc.Endpoint
	cfg     ClientConfig
	id      uint64        // names this Client's operations (random, never 0)
	opSeq   atomic.Uint64 // the last operation number used
	cur     atomic.Uint32 // index of the preferred center
	bufPool sync.Pool     // *callBuf

	reach reach // whether the centers answer, for the log

	watchMu  sync.RWMutex
	watches  map[uint64]*Watch // by current stream id
	pushOnce sync.Once
	pushErr  error
}

// callBuf is the per-call scratch: a parameter buffer and a reply.
type callBuf struct {
	seg   []byte
	ps    wire.Params
	reply rfc.Reply
}

// NewClient returns a client of the given centers on ep.
func NewClient(ep *rfc.Endpoint, cfg ClientConfig) (*Client, error) {
	if len(cfg.Centers) < 1 || len(cfg.Centers) > 2 {
		return nil, rfc.BadConfig("registry", "Centers", len(cfg.Centers), "one or two centers")
	}
	for _, a := range cfg.Centers {
		if !a.IsValid() {
			return nil, rfc.BadConfig("registry", "Centers", a, "invalid address")
		}
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.KeepaliveEvery <= 0 {
		cfg.KeepaliveEvery = DefaultKeepaliveEvery
	}
	cfg.IDs = cfg.IDs.OrRandom()
	c := &Client{ep: ep, cfg: cfg, id: cfg.IDs(), watches: make(map[uint64]*Watch)}
	seg := ep.Config().MaxDatagram - wire.HeaderSize
	c.bufPool.New = func() any { return &callBuf{seg: make([]byte, seg)} }
	return c, nil
}

// Endpoint returns the client's endpoint.
func (c *Client) Endpoint() *rfc.Endpoint { return c.ep }

// Config returns the configuration the client runs with, defaults
// applied.
func (c *Client) Config() ClientConfig { return c.cfg }

// Centers returns the centers' addresses.
func (c *Client) Centers() []netip.AddrPort { return c.cfg.Centers }

// RawEntry is an entry of the whole namespace (registry.RawEntry).
type RawEntry = registry.RawEntry

// Entry is a key/value entry as the Client returns it.
type Entry struct {
	Key        string // without the "kv/" prefix
	Value      []byte
	Version    uint64
	ExpireMs   int64 // absolute expiry, Unix ms; 0 = none
	ModifiedMs int64
	Node       uint32 // node id of the writer
}

// failover reports whether an error means "try the other center".
func failover(e wire.Errno) bool {
	switch e {
	case wire.ENODEAD, wire.ETIMEDOUT, wire.EBUSY, wire.ENOCALL, wire.ECLOSED:
		return true
	}
	return false
}

// allDead reports whether the engine has declared every center dead.
func (c *Client) allDead() bool {
	for _, a := range c.cfg.Centers {
		if info, ok := c.ep.Peer(a); !ok || info.State != rfc.PeerDead {
			return false
		}
	}
	return true
}

// newOp returns the name of a new write operation.
func (c *Client) newOp() sdk.OpID { return sdk.OpID{Client: c.id, Seq: c.opSeq.Add(1)} }

// mayHaveRun reports whether an attempt of a write that failed with e may
// have been applied: every error but those that say the center refused
// it or never ran it. ESTALE is not one of those: the engine also answers
// it for a call that ran (a retransmission below the duplicate cache's
// floor after its reply left the cache early) or may still run (a
// first-contact refusal that arrives after the center raised its
// incarnation, while the resent request is on its way).
func mayHaveRun(e wire.Errno) bool {
	switch e {
	case wire.EBUSY, wire.ENOCALL, wire.EINVAL, wire.EMSGSIZE, wire.EPERM,
		wire.ECONFLICT, wire.ENOENT, wire.ENOSPC:
		return false
	}
	return true
}

// call runs one call that is not a write, with failover and retries
// (run).
func (c *Client) call(ctx context.Context, callNo uint16, build func(ps *wire.Params), read func(p *wire.Packet) error) error {
	return c.run(ctx, callNo, false, build, read)
}

// write runs one write operation (build includes its sdk.OpID) with
// failover and retries (run).
func (c *Client) write(ctx context.Context, callNo uint16, build func(ps *wire.Params), read func(p *wire.Packet) error) error {
	return c.run(ctx, callNo, true, build, read)
}

// run runs one call with failover and EAGAIN retries. build fills the
// request; read, if not nil, reads a successful reply (the reply is valid
// only during read). A call whose centers are all declared dead returns
// ENODEAD at once; after each round in which every center failed, and
// before each retry of EAGAIN, it waits a backoff (rfc.Backoff). For a
// write, an ECONFLICT or ENOENT after an attempt that may have been
// applied is ETIMEDOUT: the outcome is unknown.
func (c *Client) run(ctx context.Context, callNo uint16, write bool, build func(ps *wire.Params), read func(p *wire.Packet) error) error {
	b := c.bufPool.Get().(*callBuf)
	defer c.bufPool.Put(b)
	backoff := rfc.Backoff{Min: minRetryBackoff, Max: maxRetryBackoff}
	var last error = wire.ETIMEDOUT
	staleRetried := false
	failed := 0       // centers failed in a row
	maybeRun := false // an earlier attempt of the write may have been applied
	for tries := 0; ; tries++ {
		if ctx.Err() != nil {
			return last
		}
		i := c.cur.Load() % uint32(len(c.cfg.Centers))
		b.ps.Reset(b.seg)
		build(&b.ps)
		if e := b.ps.Err(); e != wire.OK {
			return e
		}
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		err := c.ep.Call(actx, c.cfg.Centers[i], callNo, &b.ps, &b.reply)
		cancel()
		c.noteCall(int(i), err)
		e := wire.AsErrno(err)
		if write && maybeRun && (e == wire.ECONFLICT || e == wire.ENOENT) {
			return wire.ETIMEDOUT
		}
		maybeRun = maybeRun || write && e != wire.OK && mayHaveRun(e)
		switch {
		case e == wire.OK:
			if read != nil {
				return read(&b.reply.Packet)
			}
			return nil
		case e == wire.ESTALE && !staleRetried:
			// The center restarted since this endpoint last heard from
			// it (the engine refused the call without running it, and
			// its reply carried the new incarnation), or the call ran
			// or may still run (mayHaveRun). Once more at once: a write
			// is sent again with its operation id, which the center's
			// operation table answers with the version it made.
			staleRetried = true
			last = err
		case e == wire.EAGAIN:
			last = err
			failed = 0
			if !backoff.Wait(ctx, nil) {
				return last
			}
		case failover(e) || e == wire.ECANCELED && ctx.Err() == nil:
			last = err
			if e == wire.ENODEAD && c.allDead() {
				return err
			}
			if len(c.cfg.Centers) > 1 {
				c.cur.CompareAndSwap(i, 1-i)
			}
			if failed++; failed >= len(c.cfg.Centers) {
				failed = 0
				if !backoff.Wait(ctx, nil) {
					return last
				}
			}
		default:
			return err
		}
	}
}

// callAt runs one call at one center, no failover.
func (c *Client) callAt(ctx context.Context, dst netip.AddrPort, callNo uint16, build func(ps *wire.Params), read func(p *wire.Packet) error) error {
	b := c.bufPool.Get().(*callBuf)
	defer c.bufPool.Put(b)
	b.ps.Reset(b.seg)
	build(&b.ps)
	if e := b.ps.Err(); e != wire.OK {
		return e
	}
	err := c.ep.Call(ctx, dst, callNo, &b.ps, &b.reply)
	for i, a := range c.cfg.Centers {
		if a == dst {
			c.noteCall(i, err)
		}
	}
	if err != nil {
		return err
	}
	if read != nil {
		return read(&b.reply.Packet)
	}
	return nil
}

func readVersion(v *uint64) func(p *wire.Packet) error {
	return func(p *wire.Packet) error {
		if p.NParams() != 1 || p.Param(0).Type != wire.TypeUint64 {
			return wire.EPROTO
		}
		*v = p.Param(0).Uint64()
		return nil
	}
}

// entryOf decodes a KV record into an Entry.
func entryOf(key string, rec []byte) (Entry, error) {
	var r sdk.Record
	if e := sdk.ParseRecord(rec, &r); e != wire.OK {
		return Entry{}, e
	}
	if r.Kind != sdk.KindKV {
		return Entry{}, wire.ENOENT
	}
	return Entry{Key: strings.TrimPrefix(key, sdk.KVPrefix), Value: append([]byte(nil), r.Body...),
		Version: r.Version, ExpireMs: r.ExpireMs, ModifiedMs: r.ModifiedMs, Node: r.Node}, nil
}

// GetRaw returns the record of any key of the namespace ("svc/...",
// "kv/..."). ENOENT if absent.
func (c *Client) GetRaw(ctx context.Context, key string) ([]byte, error) {
	var rec []byte
	maxDg := c.ep.Config().MaxDatagram
	err := c.call(ctx, registry.CallGet, func(ps *wire.Params) {
		ps.String(key)
		rfc.AppendPad(ps, maxDg)
	}, func(p *wire.Packet) error {
		if p.NParams() != 1 || p.Param(0).Type != wire.TypeBytes {
			return wire.EPROTO
		}
		rec = append([]byte(nil), p.Param(0).Bytes()...)
		return nil
	})
	return rec, err
}

// Get returns the key/value entry key. ENOENT if absent or expired.
func (c *Client) Get(ctx context.Context, key string) (Entry, error) {
	rec, err := c.GetRaw(ctx, sdk.KVPrefix+key)
	if err != nil {
		return Entry{}, err
	}
	return entryOf(sdk.KVPrefix+key, rec)
}

func (c *Client) put(ctx context.Context, key string, value []byte, expect uint64, ttl time.Duration, mode uint64) (uint64, error) {
	if ttl < 0 {
		return 0, wire.EINVAL
	}
	var v uint64
	id := c.newOp()
	err := c.write(ctx, registry.CallPut, func(ps *wire.Params) {
		ps.String(sdk.KVPrefix + key)
		ps.Bytes(value)
		ps.Uint64(expect)
		ps.Uint64(uint64(rfc.CeilMs(ttl)))
		ps.Uint64(mode)
		registry.AppendOp(ps, id)
	}, readVersion(&v))
	return v, err
}

// Put writes key unconditionally and returns its new version. ttl 0
// means no expiry; another ttl is rounded up to whole milliseconds.
// EMSGSIZE if the entry would not fit one datagram.
func (c *Client) Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	return c.put(ctx, key, value, 0, ttl, registry.PutPlain)
}

// CAS writes key only if its version is expectVersion (0: it must not
// exist) and returns the new version; ECONFLICT otherwise (definite: not
// written). ETIMEDOUT and the other errors leave the outcome unknown.
func (c *Client) CAS(ctx context.Context, key string, expectVersion uint64, value []byte, ttl time.Duration) (uint64, error) {
	return c.put(ctx, key, value, expectVersion, ttl, registry.PutCAS)
}

// Delete deletes key; if expectVersion is not 0 the entry must be at that
// version (ECONFLICT otherwise). ENOENT if absent. ECONFLICT and ENOENT
// are definite (not deleted); ETIMEDOUT and the other errors leave the
// outcome unknown.
func (c *Client) Delete(ctx context.Context, key string, expectVersion uint64) error {
	_, err := c.DeleteVersion(ctx, key, expectVersion)
	return err
}

// DeleteVersion is Delete that also returns the version of the tombstone.
func (c *Client) DeleteVersion(ctx context.Context, key string, expectVersion uint64) (uint64, error) {
	var v uint64
	id := c.newOp()
	err := c.write(ctx, registry.CallDelete, func(ps *wire.Params) {
		ps.String(sdk.KVPrefix + key)
		ps.Uint64(expectVersion)
		registry.AppendOp(ps, id)
	}, readVersion(&v))
	return v, err
}

// ListRaw returns one page of entries of the whole namespace whose keys
// start with prefix, strictly after the key after, at most limit (0: as
// many as fit a datagram), tombstones included if asked, and next: the
// key to pass as after for the next page, "" when the listing has ended.
// A page examines a bounded number of keys at the center
// (registry.ListScan), so one over many deleted or expired entries may be
// empty with next set: a caller listing a whole prefix goes on while next
// is not "". A page that is not the last yet gives no next key after after
// is EPROTO (registry.ListNext): following it would never end.
func (c *Client) ListRaw(ctx context.Context, prefix, after string, limit int, tombstones bool) (page []registry.RawEntry, next string, err error) {
	var flags uint64
	if tombstones {
		flags = registry.ListTombstones
	}
	maxDg := c.ep.Config().MaxDatagram
	err = c.call(ctx, registry.CallList, func(ps *wire.Params) {
		registry.BuildList(ps, prefix, after, limit, flags, maxDg)
	}, func(p *wire.Packet) error {
		var e error
		page, next, e = registry.ReadList(p, after, page[:0])
		return e
	})
	return page, next, err
}

// List returns one page of key/value entries whose keys start with
// prefix, strictly after the key after ("" from the start; keys are given
// without "kv/"), at most limit (0: as many as fit a datagram), and next:
// the key to pass as after for the next page, "" when the listing has
// ended. A page may be empty with next set (ListRaw).
func (c *Client) List(ctx context.Context, prefix, after string, limit int) ([]Entry, string, error) {
	a := ""
	if after != "" {
		a = sdk.KVPrefix + after
	}
	raw, next, err := c.ListRaw(ctx, sdk.KVPrefix+prefix, a, limit, false)
	if err != nil {
		return nil, "", err
	}
	if next != "" && !strings.HasPrefix(next, sdk.KVPrefix) {
		// Every key under a "kv/" prefix starts with it.
		return nil, "", wire.EPROTO
	}
	out := make([]Entry, 0, len(raw))
	for _, r := range raw {
		e, err := entryOf(r.Key, r.Record)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	return out, strings.TrimPrefix(next, sdk.KVPrefix), nil
}

// ListAll returns every key/value entry whose key starts with prefix,
// reading page after page (List) until the listing ends, however many
// pages hold no entry; ctx bounds the whole listing. A page whose next key
// is not after the key it listed after is EPROTO (ListRaw): resuming there
// would never end.
func (c *Client) ListAll(ctx context.Context, prefix string) ([]Entry, error) {
	var all []Entry
	after := ""
	for {
		es, next, err := c.List(ctx, prefix, after, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
		if next == "" {
			return all, nil
		}
		after = next
	}
}

// Register registers this endpoint's node (its node id, which must not be
// 0) as an instance of service name at addr with metadata meta, kept alive
// by renewals for lease (0: the center's default; another is rounded up
// to whole milliseconds; negative: EINVAL). It replaces an earlier
// registration of the same name by this node made from this endpoint's
// address, or one whose lease has run out; a live one registered from
// another address is EPERM (docs/REGISTRY.md).
func (c *Client) Register(ctx context.Context, name, addr string, meta []byte, lease time.Duration) (uint64, error) {
	if lease < 0 {
		return 0, wire.EINVAL
	}
	var v uint64
	id := c.newOp()
	err := c.write(ctx, registry.CallRegister, func(ps *wire.Params) {
		ps.String(name)
		ps.String(addr)
		ps.Bytes(meta)
		ps.Uint64(uint64(rfc.CeilMs(lease)))
		registry.AppendOp(ps, id)
	}, readVersion(&v))
	return v, err
}

// Deregister removes this node's instance of service name; EPERM if it
// is live and was registered from another address.
func (c *Client) Deregister(ctx context.Context, name string) error {
	var v uint64
	id := c.newOp()
	return c.write(ctx, registry.CallDeregister, func(ps *wire.Params) {
		ps.String(name)
		registry.AppendOp(ps, id)
	}, readVersion(&v))
}

// Renew renews the lease of every instance registered from this endpoint
// and returns how many there were; ENOENT if none (register again).
func (c *Client) Renew(ctx context.Context) (int, error) {
	var v uint64
	err := c.call(ctx, registry.CallRenew, func(ps *wire.Params) {}, readVersion(&v))
	return int(v), err
}

// Lookup returns the instances of service name from a center.
func (c *Client) Lookup(ctx context.Context, name string) ([]sdk.Instance, error) {
	return c.LookupPrefix(ctx, name+string(sdk.InstanceSep))
}

// LookupPrefix returns the instances of every service whose name starts
// with prefix, from a center, paging as needed.
func (c *Client) LookupPrefix(ctx context.Context, prefix string) ([]sdk.Instance, error) {
	var out []sdk.Instance
	var page []registry.RawEntry
	after := ""
	for {
		var next string
		var err error
		page, next, err = c.ListRaw(ctx, sdk.ServicePrefix+prefix, after, 0, false)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			var in sdk.Instance
			if e := sdk.DecodeInstance([]byte(r.Key), r.Record, &in); e != wire.OK {
				return nil, e
			}
			out = append(out, in)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(out) == 0 {
		return nil, wire.ENOENT
	}
	return out, nil
}
