package sdk

import (
	"sync"
	"time"

	"fastcall/shm"
	"fastcall/wire"
)

// Instance is one instance of a service as a Reader returns it.
type Instance struct {
	Name       string
	Node       uint32
	Addr       string // service address, "ip:port"
	Owner      string // address of the registering node's endpoint
	Meta       []byte
	Version    uint64
	LeaseMs    uint32
	ModifiedMs int64
}

// KV is one key/value entry as a Reader returns it.
type KV struct {
	Key      string // without KVPrefix
	Value    []byte
	Version  uint64
	ExpireMs int64 // absolute, Unix ms; 0 = none
}

// maxCacheNames bounds the names a Reader remembers; past it the cache is
// cleared and refilled on demand.
const maxCacheNames = 4096

// Reader looks services and key/value entries up in an agent's map file.
// It keeps what it decoded per service name and answers from it while the
// change-sequence file says the map is unchanged; without that file (or
// off Linux) every lookup reads the map. Not safe for concurrent use.
type Reader struct {
	m        *shm.Map
	seq      *seqMap // nil: no cache
	cacheSeq uint64
	cache    map[string][]Instance
	hits     uint64
	misses   uint64
}

// Open opens the map file at path read-only (a bare name is looked for
// in shm.DefaultDir) and, if present, its change-sequence file.
func Open(path string) (*Reader, error) {
	m, err := shm.Open(path, shm.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	r := &Reader{m: m, cache: make(map[string][]Instance)}
	if s, err := openSeq(m.Path()+SeqSuffix, false); err == nil {
		r.seq = s
	}
	return r, nil
}

// Close unmaps the files.
func (r *Reader) Close() error {
	if r.seq != nil {
		r.seq.close()
		r.seq = nil
	}
	return r.m.Close()
}

// dropSeq ends the cache: the change-sequence file was cut under the
// mapping (a local process truncated it), and a sequence read from it
// again could not be trusted to move on. Lookups read the map from here
// on, as without the file.
func (r *Reader) dropSeq() {
	r.seq.close()
	r.seq = nil
	clear(r.cache)
}

// Map returns the underlying map, for tools (stat, dump, verify).
func (r *Reader) Map() *shm.Map { return r.m }

// Cached reports whether the reader found a change-sequence file.
func (r *Reader) Cached() bool { return r.seq != nil }

// CacheStats returns how many lookups were answered from the cache and
// how many read the map.
func (r *Reader) CacheStats() (hits, misses uint64) { return r.hits, r.misses }

// Lookup returns the instances of service name, in node-id order. The
// slice is shared with the reader's cache: read it, do not modify it; it
// stays valid after later lookups. ENOENT if there is none.
func (r *Reader) Lookup(name string) ([]Instance, error) {
	if r.seq != nil {
		s, ok := r.seq.load()
		if !ok {
			r.dropSeq()
			return r.Lookup(name)
		}
		if s != r.cacheSeq || len(r.cache) >= maxCacheNames {
			clear(r.cache)
			r.cacheSeq = s
		}
		if v, ok := r.cache[name]; ok {
			r.hits++
			if len(v) == 0 {
				return nil, wire.ENOENT
			}
			return v, nil
		}
	}
	r.misses++
	v, err := r.LookupDirect(name, nil)
	if err != nil && err != wire.ENOENT {
		return nil, err
	}
	if r.seq != nil {
		if v == nil {
			v = []Instance{}
		}
		r.cache[name] = v
	}
	if len(v) == 0 {
		return nil, wire.ENOENT
	}
	return v, nil
}

// LookupDirect appends the instances of service name to dst, reading the
// map (no cache). ENOENT if there is none.
func (r *Reader) LookupDirect(name string, dst []Instance) ([]Instance, error) {
	n := len(dst)
	var perr error
	err := r.m.Prefix([]byte(ServiceNamePrefix(name)), func(k, v []byte) bool {
		var in Instance
		if e := DecodeInstance(k, v, &in); e != wire.OK {
			perr = e
			return false
		}
		dst = append(dst, in)
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return dst, err
	}
	if len(dst) == n {
		return dst, wire.ENOENT
	}
	return dst, nil
}

// LookupPrefix calls fn for every instance of every service whose name
// starts with prefix, in key order, until fn returns false. It reads the
// map (no cache); fn runs under the map's shared lock and must be quick.
func (r *Reader) LookupPrefix(prefix string, fn func(Instance) bool) error {
	var perr error
	err := r.m.Prefix([]byte(ServicePrefix+prefix), func(k, v []byte) bool {
		var in Instance
		if e := DecodeInstance(k, v, &in); e != wire.OK {
			perr = e
			return false
		}
		return fn(in)
	})
	if err == nil {
		err = perr
	}
	return err
}

// Get returns the key/value entry key (without KVPrefix). ENOENT if it is
// absent or past its expiry.
func (r *Reader) Get(key string) (KV, error) {
	var out KV
	var perr wire.Errno
	err := r.m.View([]byte(KVPrefix+key), func(v []byte) {
		var rec Record
		if perr = ParseRecord(v, &rec); perr != wire.OK {
			return
		}
		if rec.Kind != KindKV {
			perr = wire.ENOENT
			return
		}
		out = KV{Key: key, Value: append([]byte(nil), rec.Body...), Version: rec.Version, ExpireMs: rec.ExpireMs}
	})
	if err != nil {
		return KV{}, err
	}
	if perr != wire.OK {
		return KV{}, perr
	}
	if out.ExpireMs != 0 && out.ExpireMs <= time.Now().UnixMilli() {
		return KV{}, wire.ENOENT
	}
	return out, nil
}

// DecodeInstance decodes an instance key and its record into in, copying
// what it keeps. EPROTO if the key is not an instance key or the record is
// not a service record.
func DecodeInstance(k, v []byte, in *Instance) wire.Errno {
	name, node, ok := SplitServiceKey(k)
	if !ok {
		return wire.EPROTO
	}
	var rec Record
	if e := ParseRecord(v, &rec); e != wire.OK {
		return e
	}
	if rec.Kind != KindService {
		return wire.EPROTO
	}
	*in = Instance{Name: string(name), Node: node, Addr: string(rec.Addr), Owner: string(rec.Owner),
		Version: rec.Version, LeaseMs: rec.LeaseMs, ModifiedMs: rec.ModifiedMs}
	if len(rec.Body) > 0 {
		in.Meta = append([]byte(nil), rec.Body...)
	}
	return wire.OK
}

// SeqWriter is the writer side of a change-sequence file, used by the
// node agent. Safe for concurrent use.
type SeqWriter struct {
	path string
	mu   struct {
		sync.Mutex
		s      *seqMap // nil: closed, or the file could not be made again
		last   uint64  // the sequence last written
		closed bool
	}
}

// OpenSeqWriter creates or opens the change-sequence file of the map at
// mapPath (the map's full path, shm.Map.Path). ENOSYS off Linux.
func OpenSeqWriter(mapPath string) (*SeqWriter, error) {
	s, err := openSeq(mapPath+SeqSuffix, true)
	if err != nil {
		return nil, err
	}
	w := &SeqWriter{path: mapPath + SeqSuffix}
	w.mu.s = s
	w.mu.last, _ = s.load()
	return w, nil
}

// Bump raises the sequence: readers drop what they cached. A file cut
// under the mapping (a local process truncated it) is made again, its
// sequence set above every value written before so that no reader's
// cached sequence comes back; readers that find the cut stop caching.
func (w *SeqWriter) Bump() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return
	}
	if w.mu.s != nil {
		if v, ok := w.mu.s.add(1); ok {
			w.mu.last = v
			return
		}
		w.mu.s.close()
		w.mu.s = nil
	}
	s, err := openSeq(w.path, true)
	if err != nil {
		return // tried again at the next Bump
	}
	if !s.store(w.mu.last + 1) {
		s.close() // cut again meanwhile
		return
	}
	w.mu.s = s
	w.mu.last++
}

// Load returns the sequence last written.
func (w *SeqWriter) Load() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.last
}

// Close unmaps the file.
func (w *SeqWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.closed = true
	if w.mu.s != nil {
		w.mu.s.close()
		w.mu.s = nil
	}
}
