package route

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// MemberConfig configures a Member.
type MemberConfig struct {
	// Active is the role the member starts in (default false: standby).
	// A member that comes back after a failure should start as standby:
	// the router may have promoted another one meanwhile.
	Active bool
	// Notices is how many failure notices are kept (default 256); older
	// ones are forgotten.
	Notices int
	// MaxEntries bounds the namespace (default 65536 paths); a put of a
	// new path past it is answered ENOSPC.
	MaxEntries int
}

// Member defaults.
const (
	DefaultMemberNotices    = 256
	DefaultMemberMaxEntries = 65536
)

// DefaultMemberConfig returns the documented defaults.
func DefaultMemberConfig() MemberConfig {
	return MemberConfig{Notices: DefaultMemberNotices, MaxEntries: DefaultMemberMaxEntries}
}

// Notice is one failure notice a member received from a router.
type Notice struct {
	Time       time.Time // when the router saw the failure
	Router     netip.AddrPort
	ClientAddr string
	ClientNode uint32
	CallID     uint64 // the client's call id
	CallNo     uint16
	CallName   string
	Errno      wire.Errno
	Path       string
}

// nsEntry is one path of the namespace.
type nsEntry struct {
	value   []byte
	version uint64
}

// Member is a sub-cluster member: a path-keyed namespace in memory
// served over the namespace calls, in their direct form (CallNSPut...)
// and in the forwarded form a router sends (number+RoutedOffset, with the
// client context first). A standby member answers every namespace call
// ENOTACTIVE. All methods are safe for concurrent use.
type Member struct {
	cfg    MemberConfig
	active atomic.Bool
	// role orders the CallSetRole requests the member obeys: a request
	// whose epoch is below epoch, the highest it has obeyed, was
	// overtaken by a later decision and is refused ECONFLICT. epoch
	// starts at the wall clock in Unix ns when the member is made: a
	// router's epoch is at least its wall clock when it sent the request,
	// so a copy of a request sent before this process started (delayed
	// in the network, or replayed within the age bound: the call is
	// idempotent, so neither the duplicate cache nor the restart rule
	// stops it) is refused, not obeyed by a member restarted as standby
	// while the router has made another active. Epoch 0 (an operator's
	// request) is obeyed whatever came before and leaves epoch as it is.
	role struct {
		sync.Mutex // guards epoch; held while active is set by CallSetRole
		epoch      uint64
	}
	// maxAhead bounds how far past this member's clock an epoch may be
	// (the engine's MaxAge, set by Register; 0: no bound). A router's
	// epoch is its clock, and nodes' clocks agree within MaxAge: an
	// epoch further ahead was sent by no router, and obeyed it would
	// make the member refuse the router's every set-role until its
	// clock caught up (forever, for 2^64-1).
	maxAhead time.Duration

	writes atomic.Uint64 // namespace changes applied
	ns     struct {
		sync.RWMutex // guards m, keys and version
		m            map[string]nsEntry
		// keys holds every path of m, sorted: an ns-list page starts at
		// its prefix or cursor by binary search and walks only the
		// paths it returns. A new path costs a copy of the slice, which
		// MemberConfig.MaxEntries bounds.
		keys    []string
		version uint64
	}
	notices struct {
		sync.Mutex // guards ring, next, total
		ring       []Notice
		next       int
		total      uint64
	}
}

// NewMember returns a member with an empty namespace. Zero fields of cfg
// take their defaults.
func NewMember(cfg MemberConfig) *Member {
	if cfg.Notices <= 0 {
		cfg.Notices = DefaultMemberNotices
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMemberMaxEntries
	}
	m := &Member{cfg: cfg}
	m.active.Store(cfg.Active)
	m.role.epoch = uint64(time.Now().UnixNano())
	m.ns.m = map[string]nsEntry{}
	m.notices.ring = make([]Notice, 0, cfg.Notices)
	return m
}

// SetActive sets the member's role.
func (m *Member) SetActive(on bool) { m.active.Store(on) }

// Active reports whether the member is the active one of its sub-cluster.
func (m *Member) Active() bool { return m.active.Load() }

// Writes returns the number of namespace changes (puts and deletes)
// applied.
func (m *Member) Writes() uint64 { return m.writes.Load() }

// Notices returns the failure notices held, newest first.
func (m *Member) Notices() []Notice {
	m.notices.Lock()
	defer m.notices.Unlock()
	n := len(m.notices.ring)
	out := make([]Notice, 0, n)
	for i := 0; i < n; i++ {
		j := (m.notices.next - 1 - i + 2*n) % n
		out = append(out, m.notices.ring[j])
	}
	return out
}

// Register adds the member's calls to ep: the namespace calls in both
// forms, CallNotice, CallSetRole and CallNotices.
func (m *Member) Register(ep *rfc.Endpoint) error {
	op := func(f func(*rfc.Request, int, *wire.Params) wire.Errno, base int) rfc.Handler {
		return func(req *rfc.Request, reply *wire.Params) wire.Errno {
			if !m.active.Load() {
				return wire.ENOTACTIVE
			}
			return f(req, base, reply)
		}
	}
	calls := []rfc.CallSpec{
		{No: CallNSPut, Name: "ns-put", Schema: schemaNSPut, H: op(m.put, 0)},
		{No: CallNSGet, Name: "ns-get", Schema: schemaNSGet, Flags: rfc.Idempotent, H: op(m.get, 0)},
		{No: CallNSList, Name: "ns-list", Schema: schemaNSList, Flags: rfc.Idempotent, H: op(m.list, 0)},
		{No: CallNSDelete, Name: "ns-delete", Schema: schemaNSDelete, H: op(m.del, 0)},
		{No: CallNSPut + RoutedOffset, Name: "ns-put-fwd", Schema: ForwardedSchema(schemaNSPut), H: op(m.put, ContextParams)},
		{No: CallNSGet + RoutedOffset, Name: "ns-get-fwd", Schema: ForwardedSchema(schemaNSGet), Flags: rfc.Idempotent, H: op(m.get, ContextParams)},
		{No: CallNSList + RoutedOffset, Name: "ns-list-fwd", Schema: ForwardedSchema(schemaNSList), Flags: rfc.Idempotent, H: op(m.list, ContextParams)},
		{No: CallNSDelete + RoutedOffset, Name: "ns-delete-fwd", Schema: ForwardedSchema(schemaNSDelete), H: op(m.del, ContextParams)},
		{No: CallNotice, Name: "route-notice", Schema: schemaNotice, Flags: rfc.OneWay | rfc.Idempotent, H: m.serveNotice},
		{No: CallSetRole, Name: "route-set-role", Schema: schemaSetRole, Flags: rfc.Idempotent, H: m.serveSetRole},
		{No: CallNotices, Name: "route-notices", Schema: wire.Schema{wire.TypeUint64, wire.TypeBytes}, Flags: rfc.Idempotent, H: m.serveNotices},
	}
	m.maxAhead = ep.Config().MaxAge
	return ep.RegisterCalls(calls)
}

func (m *Member) put(req *rfc.Request, base int, reply *wire.Params) wire.Errno {
	path := req.Param(base).Bytes()
	if len(path) == 0 || path[0] != '/' || len(path) > MaxPathLen {
		return wire.EINVAL
	}
	val := append([]byte(nil), req.Param(base+1).Bytes()...)
	m.ns.Lock()
	if _, ok := m.ns.m[string(path)]; !ok && len(m.ns.m) >= m.cfg.MaxEntries {
		m.ns.Unlock()
		return wire.ENOSPC
	}
	if _, ok := m.ns.m[string(path)]; !ok {
		i, _ := slices.BinarySearch(m.ns.keys, string(path))
		m.ns.keys = slices.Insert(m.ns.keys, i, string(path))
	}
	m.ns.version++
	v := m.ns.version
	m.ns.m[string(path)] = nsEntry{value: val, version: v}
	m.ns.Unlock()
	m.writes.Add(1)
	reply.Uint64(v)
	return wire.OK
}

func (m *Member) get(req *rfc.Request, base int, reply *wire.Params) wire.Errno {
	path := req.Param(base).Bytes()
	m.ns.RLock()
	e, ok := m.ns.m[string(path)]
	m.ns.RUnlock()
	if !ok {
		return wire.ENOENT
	}
	reply.Bytes(e.value)
	reply.Uint64(e.version)
	return wire.OK
}

func (m *Member) list(req *rfc.Request, base int, reply *wire.Params) wire.Errno {
	prefix, after := req.Param(base).Str(), req.Param(base+1).Str()
	limit := req.Param(base + 2).Uint64()
	room := reply.Cap()
	if base == ContextParams {
		room = min(room, clientRoom(req))
	}
	if m.listPage(prefix, after, limit, room, reply) > 0 && reply.Count() == 1 {
		// The reply room is below the first path: the request was not
		// padded, and a page without a path gives no cursor.
		return wire.EMSGSIZE
	}
	return wire.OK
}

// clientRoom is the reply room, parameters only, of the client whose
// call a router forwarded as req: the router relays the member's reply
// whole, and the client's request was req without the client context.
// An unauthenticated reply is bounded by that request, not by req: a
// page sized by req did not fit the client's reply (EMSGSIZE there).
func clientRoom(req *rfc.Request) int {
	n := req.Len
	for i := 0; i < ContextParams; i++ {
		n -= wire.ParamHdrSize + len(req.Param(i).Raw)
	}
	// An authenticated forward carries an authenticated client request.
	return rfc.ReplyBudget(req.Flags&wire.FlagAuth != 0, n) - wire.HeaderSize
}

// listPage writes the ns-list page of the paths starting with prefix,
// strictly after after, to reply: u64 more, then at most limit paths (0:
// as many as fit in room bytes of parameters) in order. It finds the page's first path by binary
// search and stops at the first path that does not fit, so a page
// examines at most one path more than it returns, however large the
// namespace. It returns how many paths it examined.
func (m *Member) listPage(prefix, after string, limit uint64, room int, reply *wire.Params) int {
	moreAt := reply.ReserveUint64() // 1 if the list was cut, known after it
	from := prefix
	if after >= prefix {
		from = after
	}
	m.ns.RLock()
	defer m.ns.RUnlock()
	i, found := slices.BinarySearch(m.ns.keys, from)
	if found && from == after {
		i++ // strictly after the cursor
	}
	n := 0
	for ; i < len(m.ns.keys); i++ {
		k := m.ns.keys[i]
		if !strings.HasPrefix(k, prefix) {
			break
		}
		n++
		if (limit != 0 && uint64(reply.Count()-1) >= limit) || reply.Len()+wire.ParamHdrSize+len(k) > room || reply.Count() >= wire.MaxParams {
			reply.SetUint64(moreAt, 1)
			break
		}
		reply.String(k)
	}
	return n
}

func (m *Member) del(req *rfc.Request, base int, reply *wire.Params) wire.Errno {
	path := req.Param(base).Bytes()
	m.ns.Lock()
	if _, ok := m.ns.m[string(path)]; !ok {
		m.ns.Unlock()
		return wire.ENOENT
	}
	delete(m.ns.m, string(path))
	if i, ok := slices.BinarySearch(m.ns.keys, string(path)); ok {
		m.ns.keys = slices.Delete(m.ns.keys, i, i+1)
	}
	m.ns.version++
	v := m.ns.version
	m.ns.Unlock()
	m.writes.Add(1)
	reply.Uint64(v)
	return wire.OK
}

// serveSetRole answers CallSetRole: the role is set unless a request of
// a later epoch was obeyed before (ECONFLICT) or the epoch is further
// ahead of this member's clock than maxAhead (EINVAL). A retransmission
// carries its request's epoch and is obeyed again, to the same effect.
func (m *Member) serveSetRole(req *rfc.Request, reply *wire.Params) wire.Errno {
	on, epoch := req.Param(0).Bool(), req.Param(1).Uint64()
	if m.maxAhead > 0 && epoch > uint64(time.Now().UnixNano())+uint64(m.maxAhead) {
		return wire.EINVAL
	}
	m.role.Lock()
	if epoch != 0 && epoch < m.role.epoch {
		m.role.Unlock()
		return wire.ECONFLICT
	}
	m.role.epoch = max(m.role.epoch, epoch)
	was := m.active.Swap(on)
	m.role.Unlock()
	reply.Bool(was)
	return wire.OK
}

// serveNotice holds a router's CallNotice. A client node past 32 bits, a
// call or error number past 16, or a time past 63 (Unix ns in an int64)
// is refused EINVAL, not held cut to another call's or read as a time
// before 1970.
func (m *Member) serveNotice(req *rfc.Request, _ *wire.Params) wire.Errno {
	node, nok := req.Param(0).Uint32()
	no, cok := req.Param(3).Uint16()
	eno, eok := req.Param(5).Uint16()
	at := req.Param(7).Uint64()
	if !nok || !cok || !eok || at > math.MaxInt64 {
		return wire.EINVAL
	}
	n := Notice{
		Router:     req.From,
		ClientNode: node,
		ClientAddr: req.Param(1).Str(),
		CallID:     req.Param(2).Uint64(),
		CallNo:     no,
		CallName:   req.Param(4).Str(),
		Errno:      wire.Errno(eno),
		Path:       req.Param(6).Str(),
		Time:       time.Unix(0, int64(at)),
	}
	m.notices.Lock()
	if len(m.notices.ring) < cap(m.notices.ring) {
		m.notices.ring = append(m.notices.ring, n)
		m.notices.next = len(m.notices.ring) % cap(m.notices.ring)
	} else {
		m.notices.ring[m.notices.next] = n
		m.notices.next = (m.notices.next + 1) % len(m.notices.ring)
	}
	m.notices.total++
	m.notices.Unlock()
	return wire.OK
}

// serveNotices answers CallNotices: the notices held, newest first, from
// skip on, as many as fit.
func (m *Member) serveNotices(req *rfc.Request, reply *wire.Params) wire.Errno {
	skip := req.Param(0).Uint64()
	ns := m.Notices()
	reply.Uint64(uint64(len(ns)))
	for i := skip; i < uint64(len(ns)); i++ {
		n := &ns[i]
		need := 7*wire.ParamHdrSize + 5*8 + len(n.ClientAddr) + len(n.CallName) + len(n.Path)
		if reply.Len()+need > reply.Cap() || reply.Count()+7 > wire.MaxParams {
			break
		}
		reply.Uint64(uint64(n.Time.UnixNano()))
		reply.String(n.ClientAddr)
		reply.Uint64(uint64(n.ClientNode))
		reply.Uint64(n.CallID)
		reply.String(n.CallName)
		reply.Uint64(uint64(n.Errno))
		reply.String(n.Path)
	}
	return wire.OK
}
