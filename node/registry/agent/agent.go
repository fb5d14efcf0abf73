package agent

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/client"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/shm"
	"fastcall/wire"
)

// AgentConfig configures a node agent.
type AgentConfig struct {
	// Centers are the registry centers (one or two).
	Centers []netip.AddrPort
	// Prefixes are the namespace prefixes written to the map (default
	// {"svc/"}: every service instance).
	Prefixes []string
	// ShmPath is the map file (a bare name goes to shm.DefaultDir). It is
	// created if absent, of ShmSize bytes (default 16 MiB), and grown
	// (doubled) when full.
	ShmPath string
	ShmSize int64
	// RenewEvery is how often the agent renews its own registrations
	// (default: a third of the shortest lease registered).
	RenewEvery time.Duration
	// MapRetryEvery is how often the agent writes again into the map the
	// changes it failed to write (default 100ms).
	MapRetryEvery time.Duration
	// AttemptTimeout, KeepaliveEvery and IDs configure the agent's
	// client (client.ClientConfig).
	AttemptTimeout, KeepaliveEvery time.Duration
	IDs                            registry.IDSource
	// Logger receives state changes, among them the client's (the
	// centers stop or start answering: client.ClientConfig.Logger); nil
	// means slog.Default().
	Logger *slog.Logger
}

// DefaultShmSize is the size of a new agent map file.
const DefaultShmSize = 16 << 20

// DefaultMapRetryEvery is the default AgentConfig.MapRetryEvery.
const DefaultMapRetryEvery = 100 * time.Millisecond

// DefaultAgentConfig returns the defaults for an agent of the given
// centers writing to shmPath.
func DefaultAgentConfig(shmPath string, centers ...netip.AddrPort) AgentConfig {
	return AgentConfig{Centers: centers, Prefixes: []string{sdk.ServicePrefix}, ShmPath: shmPath,
		ShmSize: DefaultShmSize, MapRetryEvery: DefaultMapRetryEvery, AttemptTimeout: client.DefaultAttemptTimeout,
		KeepaliveEvery: client.DefaultKeepaliveEvery}
}

// Agent is the registry's presence on a node: it watches prefixes at the
// centers and writes every entry it receives into the node's shared-memory
// map, where local processes read it with package sdk; and it keeps the
// node's own registrations alive. Goroutines: the Watch's one and a
// renewal goroutine, started in StartAgent; the renewal goroutine also
// writes again the changes the map refused. All methods are safe for
// concurrent use.
//
// A change the map refuses (full and unable to grow, say) is kept, the
// latest per key, and written again every MapRetryEvery until it goes
// in or a newer change of the key replaces it: the Watch has taken its
// version and will not deliver it again, so the map would otherwise stay
// behind the centers until a resynchronization. The changes kept are
// bounded by the keys under the prefixes.
type Agent struct {
	cfg   AgentConfig
	log   *slog.Logger
	c     *client.Client
	m     *shm.Map
	mw    mapWriter      // the writes to m
	seq   *sdk.SeqWriter // nil off Linux
	watch *client.Watch

	mu struct {
		sync.Mutex
		regs map[string]agentReg // by service name
	}
	// mapMu serializes the map writes of the Watch (apply) and of the
	// retries, so a retry never writes over a newer change. Lock order:
	// the Watch's lock, then mapMu.
	mapMu struct {
		sync.Mutex
		pending map[string]mapChange // by key: the latest change the map refused
	}
	// regOp holds a token while a registration is changed at the
	// centers: by Register, Deregister, and the renewal registering a
	// service again, which takes the registration from mu.regs under it,
	// so that it never registers again a service deregistered or changed
	// meanwhile. A channel, not a mutex: a wait gives up with its context.
	regOp     chan struct{}
	mapErrors atomic.Uint64
	mapKick   chan struct{} // a map write failed: retry; capacity 1
	renewKick chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// agentReg is one registration the agent keeps alive.
type agentReg struct {
	addr  string
	meta  []byte
	lease time.Duration
}

// mapChange is a change waiting to be written into the map.
type mapChange struct {
	rec     []byte // nil for a deletion
	deleted bool
}

// mapWriter is the agent's boundary with its map file: the writes apply
// makes. *shm.Map is the production one; tests wrap it to make writes
// fail.
type mapWriter interface {
	Put(key, val []byte) error
	Delete(key []byte) error
	Stats() (shm.Stats, error)
	Grow(newSize int64) error
}

// StartAgent opens (or creates) the map, loads what it holds under the
// prefixes (so that a resynchronization removes what went away while the
// agent was down), and starts watching.
func StartAgent(ep *rfc.Endpoint, cfg AgentConfig) (*Agent, error) {
	return startAgent(ep, cfg, nil)
}

// startAgent is StartAgent with the map's writes going through wrap(m)
// if wrap is not nil.
func startAgent(ep *rfc.Endpoint, cfg AgentConfig, wrap func(*shm.Map) mapWriter) (*Agent, error) {
	if cfg.ShmPath == "" {
		return nil, rfc.BadConfig("registry", "ShmPath", nil, "required")
	}
	if len(cfg.Prefixes) == 0 {
		cfg.Prefixes = []string{sdk.ServicePrefix}
	}
	if cfg.ShmSize == 0 {
		cfg.ShmSize = DefaultShmSize
	}
	if cfg.MapRetryEvery <= 0 {
		cfg.MapRetryEvery = DefaultMapRetryEvery
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c, err := client.NewClient(ep, client.ClientConfig{Centers: cfg.Centers, AttemptTimeout: cfg.AttemptTimeout,
		KeepaliveEvery: cfg.KeepaliveEvery, IDs: cfg.IDs, Logger: log})
	if err != nil {
		return nil, err
	}
	// A map file the agent makes is 0644: others may read it, only the
	// agent's uid may write it (shm refuses group or other write).
	m, err := shm.Open(cfg.ShmPath, shm.Options{})
	if wire.AsErrno(err) == wire.ENOENT || isNotExist(err) {
		m, err = shm.Create(cfg.ShmPath, cfg.ShmSize, shm.Options{Mode: 0o644})
		if wire.AsErrno(err) == wire.EEXIST {
			m, err = shm.Open(cfg.ShmPath, shm.Options{})
		}
	}
	if e := wire.AsErrno(err); e == wire.EPROTO || e == wire.EPERM {
		// Not a map this version can open (another format version, or
		// damage Open refuses), or a file this process may not trust
		// (another uid's, or writable by group or others: its owner
		// could write any record into it). The map only caches the
		// centers' records, so a new file is renamed over it; readers
		// open the new file. A rename the directory refuses fails the
		// start.
		log.Warn("registry: replacing an unusable or untrusted shm map", "path", cfg.ShmPath, "err", err)
		m, err = shm.Replace(cfg.ShmPath, cfg.ShmSize, shm.Options{Mode: 0o644})
	}
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, c: c, m: m, renewKick: make(chan struct{}, 1), done: make(chan struct{}),
		regOp: make(chan struct{}, 1)}
	a.mu.regs = make(map[string]agentReg)
	a.mapMu.pending = make(map[string]mapChange)
	a.mapKick = make(chan struct{}, 1)
	a.mw = m
	if wrap != nil {
		a.mw = wrap(m)
	}
	if s, err := sdk.OpenSeqWriter(m.Path()); err == nil {
		a.seq = s
	}
	known := make(map[string]sdk.Stamp)
	for _, p := range cfg.Prefixes {
		m.Prefix([]byte(p), func(k, v []byte) bool {
			known[string(k)] = sdk.RecordStamp(v)
			return true
		})
	}
	w, err := c.WatchFrom(cfg.Prefixes, a.apply, known)
	if err != nil {
		a.closeMap()
		return nil, err
	}
	a.watch = w
	// The agent's renewal goroutine starts here (the Watch started its own).
	a.wg.Add(1)
	go a.renewLoop()
	return a, nil
}

// Close stops the agent's goroutines and closes the map. The map file
// stays, with what it last held; registrations are left to expire (or to
// be removed when the node is declared dead). Close may be called more
// than once, from several goroutines at once; each call returns once the
// agent is closed.
func (a *Agent) Close() {
	a.closeOnce.Do(func() {
		close(a.done)
		a.wg.Wait()
		a.watch.Close()
		a.closeMap()
	})
}

func (a *Agent) closeMap() {
	if a.seq != nil {
		a.seq.Close()
	}
	a.m.Close()
}

// Client returns the agent's client (KV operations, lookups at a center).
func (a *Agent) Client() *client.Client { return a.c }

// Watch returns the agent's watch (counters, Synced).
func (a *Agent) Watch() *client.Watch { return a.watch }

// Map returns the agent's map.
func (a *Agent) Map() *shm.Map { return a.m }

// MapErrors returns how many map writes failed.
func (a *Agent) MapErrors() uint64 { return a.mapErrors.Load() }

// apply writes one change into the map (runs under the Watch's lock). A
// change the map refuses is kept for retryMap.
func (a *Agent) apply(ch client.Change) {
	a.mapMu.Lock()
	defer a.mapMu.Unlock()
	delete(a.mapMu.pending, ch.Key) // replaced by this change
	if err := a.writeMapLocked(ch.Key, ch.Record, ch.Deleted); err != nil {
		a.mapErrors.Add(1)
		if len(a.mapMu.pending) == 0 {
			a.log.Warn("registry agent: map write failed; retrying", "key", ch.Key, "err", err.Error())
		}
		var rec []byte
		if !ch.Deleted {
			rec = append([]byte(nil), ch.Record...)
		}
		a.mapMu.pending[ch.Key] = mapChange{rec: rec, deleted: ch.Deleted}
		select {
		case a.mapKick <- struct{}{}:
		default:
		}
		return
	}
	if a.seq != nil {
		a.seq.Bump()
	}
}

// writeMapLocked writes one change into the map, growing it (doubling)
// when it is full; a.mapMu is held.
func (a *Agent) writeMapLocked(key string, rec []byte, deleted bool) error {
	if deleted {
		err := a.mw.Delete([]byte(key))
		if wire.AsErrno(err) == wire.ENOENT {
			err = nil
		}
		return err
	}
	err := a.mw.Put([]byte(key), rec)
	if wire.AsErrno(err) == wire.ENOSPC {
		if st, serr := a.mw.Stats(); serr == nil {
			if gerr := a.mw.Grow(int64(st.FileSize) * 2); gerr == nil {
				err = a.mw.Put([]byte(key), rec)
			}
		}
	}
	return err
}

// retryMap writes again the changes the map refused, deletions first (they
// make room), and returns how many are still waiting.
func (a *Agent) retryMap() int {
	a.mapMu.Lock()
	defer a.mapMu.Unlock()
	if len(a.mapMu.pending) == 0 {
		return 0
	}
	wrote := 0
	for _, deletions := range [2]bool{true, false} {
		for k, ch := range a.mapMu.pending {
			if ch.deleted != deletions {
				continue
			}
			if err := a.writeMapLocked(k, ch.rec, ch.deleted); err != nil {
				a.mapErrors.Add(1)
				continue
			}
			delete(a.mapMu.pending, k)
			wrote++
		}
	}
	if wrote > 0 && a.seq != nil {
		a.seq.Bump()
	}
	if wrote > 0 && len(a.mapMu.pending) == 0 {
		a.log.Info("registry agent: map caught up", "written", wrote)
	}
	return len(a.mapMu.pending)
}

// MapBehind returns how many keys the map holds an older state of than
// the agent received (their writes failed and wait for a retry).
func (a *Agent) MapBehind() int {
	a.mapMu.Lock()
	defer a.mapMu.Unlock()
	return len(a.mapMu.pending)
}

// Register registers this node as an instance of service name and keeps
// it alive until Deregister or Close.
func (a *Agent) Register(ctx context.Context, name, addr string, meta []byte, lease time.Duration) error {
	if err := a.lockRegOp(ctx); err != nil {
		return err
	}
	defer a.unlockRegOp()
	if _, err := a.c.Register(ctx, name, addr, meta, lease); err != nil {
		return err
	}
	a.mu.Lock()
	a.mu.regs[name] = agentReg{addr: addr, meta: append([]byte(nil), meta...), lease: lease}
	a.mu.Unlock()
	select {
	case a.renewKick <- struct{}{}:
	default:
	}
	return nil
}

// Deregister removes this node's instance of service name.
func (a *Agent) Deregister(ctx context.Context, name string) error {
	if err := a.lockRegOp(ctx); err != nil {
		return err
	}
	defer a.unlockRegOp()
	a.mu.Lock()
	delete(a.mu.regs, name)
	a.mu.Unlock()
	return a.c.Deregister(ctx, name)
}

// lockRegOp takes the regOp token, or returns ETIMEDOUT (ECANCELED) when
// ctx ends first.
func (a *Agent) lockRegOp(ctx context.Context) error {
	select {
	case a.regOp <- struct{}{}:
		return nil
	case <-ctx.Done():
		return rfc.ContextErrno(ctx.Err())
	}
}

func (a *Agent) unlockRegOp() { <-a.regOp }

// renewEvery returns the renewal period for the registrations held.
func (a *Agent) renewEvery() time.Duration {
	if a.cfg.RenewEvery > 0 {
		return a.cfg.RenewEvery
	}
	every := registry.DefaultLease / 3
	a.mu.Lock()
	for _, r := range a.mu.regs {
		l := r.lease
		if l == 0 {
			l = registry.DefaultLease
		}
		if l/3 < every {
			every = l / 3
		}
	}
	a.mu.Unlock()
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	return every
}

// renewLoop renews the node's leases and registers again what a center
// lost (it restarted, or a lease expired during a partition); while the
// map has refused changes, it writes them again every MapRetryEvery.
func (a *Agent) renewLoop() {
	defer a.wg.Done()
	t := time.NewTimer(a.renewEvery())
	defer t.Stop()
	retry := time.NewTimer(a.cfg.MapRetryEvery)
	retry.Stop()
	defer retry.Stop()
	retrying := false
	for {
		select {
		case <-a.done:
			return
		case <-a.mapKick:
			if !retrying {
				retrying = true
				retry.Reset(a.cfg.MapRetryEvery)
			}
			continue
		case <-retry.C:
			retrying = a.retryMap() > 0
			if retrying {
				retry.Reset(a.cfg.MapRetryEvery)
			}
			continue
		case <-a.renewKick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			t.Reset(a.renewEvery())
			continue
		case <-t.C:
		}
		a.renew()
		t.Reset(a.renewEvery())
	}
}

func (a *Agent) renew() {
	a.mu.Lock()
	regs := make(map[string]agentReg, len(a.mu.regs))
	for k, v := range a.mu.regs {
		regs[k] = v
	}
	a.mu.Unlock()
	if len(regs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*a.c.Config().AttemptTimeout)
	defer cancel()
	n, err := a.c.Renew(ctx)
	if err != nil && wire.AsErrno(err) != wire.ENOENT {
		return
	}
	if n >= len(regs) {
		return
	}
	for name := range regs {
		if a.lockRegOp(ctx) != nil {
			return
		}
		// What the application holds now: a service deregistered
		// or registered anew since the renewal began is not undone.
		a.mu.Lock()
		r, ok := a.mu.regs[name]
		a.mu.Unlock()
		if ok {
			if _, err := a.c.Register(ctx, name, r.addr, r.meta, r.lease); err != nil {
				a.log.Warn("registry agent: register again failed", "service", name, "err", err.Error())
			}
		}
		a.unlockRegOp()
	}
}

func isNotExist(err error) bool {
	return err != nil && errors.Is(err, fs.ErrNotExist)
}
