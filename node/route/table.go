package route

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fastcall/rfc"
	"fastcall/wire"
)

// clusterState is one sub-cluster as the router forwards to it. members
// never changes; a change of the member list in the table makes a new
// clusterState that keeps the active member if it is still listed.
type clusterState struct {
	name    string
	members []netip.AddrPort
	// role is the router's view of who is active: the index in members
	// of the member believed active (low 32 bits) and the number of
	// changes of that belief (high 32 bits). A call remembers the view
	// it started from, so a late answer from a member that has since
	// been replaced never makes it the active one again.
	role    atomic.Uint64
	promote sync.Mutex // serializes failover decisions; guards kept
	// kept is the last failover decision that kept the view: the view
	// and when the decision began.
	kept struct {
		view uint64
		at   time.Time
	}
	ctr *clusterCounters
}

// roleIdx is the member index of a role view.
func roleIdx(v uint64) int { return int(uint32(v)) }

// activeIdx returns the index of the member believed active.
func (cs *clusterState) activeIdx() int { return roleIdx(cs.role.Load()) }

// setActive makes member idx the active one, whatever the view.
func (cs *clusterState) setActive(idx int) {
	for {
		v := cs.role.Load()
		if cs.role.CompareAndSwap(v, (v>>32+1)<<32|uint64(uint32(idx))) {
			return
		}
	}
}

// switchActive makes member idx the active one if the view is still
// from; it reports whether it did.
func (cs *clusterState) switchActive(from uint64, idx int) bool {
	return cs.role.CompareAndSwap(from, (from>>32+1)<<32|uint64(uint32(idx)))
}

// mountTable is an immutable snapshot of the table, published through
// Router.table and read without locks on every routed call.
type mountTable struct {
	root     *mountNode // the mounts, by component
	clusters map[string]*clusterState
	mounted  map[string]bool // the sub-clusters some mount names
}

// mountNode is a prefix of the mount trie: the mount of that prefix, if
// any, and the longer prefixes below it. The root is "/". A node below
// the node of prefix p has prefix p+"/"+edge ("/"+edge below the root):
// edge is one component, or several joined by '/' where the prefixes
// between are no mount and lead nowhere else (compact), so that a walk
// along a long mount compares bytes instead of looking up each component.
type mountNode struct {
	edge  string
	ref   mountRef
	mount bool                  // ref is a mount
	kids  map[string]*mountNode // by the first component of their edge
}

// addMount adds the mount of prefix to the trie under root, one node per
// component (compact joins them after). A prefix that does not start with
// '/' is no path's prefix and is left out.
func addMount(root *mountNode, prefix, cluster string) {
	if prefix == "" || prefix[0] != '/' {
		return
	}
	n := root
	if prefix != "/" {
		for c := range strings.SplitSeq(prefix[1:], "/") {
			k := n.kids[c]
			if k == nil {
				if n.kids == nil {
					n.kids = map[string]*mountNode{}
				}
				k = &mountNode{edge: c}
				n.kids[c] = k
			}
			n = k
		}
	}
	n.ref, n.mount = mountRef{prefix, cluster}, true
}

// compact joins every node below n that is no mount and has one node
// below it to that node, whose edge becomes the two edges joined.
func compact(n *mountNode) {
	for c, k := range n.kids {
		for !k.mount && len(k.kids) == 1 {
			for _, g := range k.kids {
				g.edge = k.edge + "/" + g.edge
				k = g
			}
		}
		n.kids[c] = k
		compact(k)
	}
}

// resolve returns the sub-cluster a routed call for path goes to: EINVAL
// if the path is longer than MaxPathLen, ENOENT if no mount matches or
// the mount names an undefined sub-cluster. The length is checked first:
// resolve runs on the reader goroutine, and a path past the bound is
// refused without a lookup.
func (mt *mountTable) resolve(path []byte) (*clusterState, wire.Errno) {
	if len(path) > MaxPathLen {
		return nil, wire.EINVAL
	}
	_, name, ok := mt.lookup(path)
	cs := mt.clusters[name]
	if !ok || cs == nil {
		return nil, wire.ENOENT
	}
	return cs, wire.OK
}

// lookup returns the longest mount prefix of path, on component
// boundaries: "/a/b" matches "/a/b" and "/a/b/c", never "/a/bc". It walks
// the trie along path and stops where the trie holds no longer prefix of
// it, so it reads each byte of path at most twice (finding the next
// component, comparing an edge), and no further than the deepest mount.
// Trying each prefix of the path from the longest, each hashed, cost the
// square of the longest mount prefix. It allocates nothing.
func (mt *mountTable) lookup(path []byte) (prefix, cluster string, ok bool) {
	if len(path) == 0 || path[0] != '/' {
		return "", "", false
	}
	n := mt.root
	best, ok := n.ref, n.mount
	rest := path[1:] // after the prefix of n and its '/'
	for n.kids != nil {
		c := rest
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			c = rest[:i]
		}
		k := n.kids[string(c)]
		if k == nil {
			break
		}
		// An edge of one component is c, which ends rest or a '/'
		// follows; a longer one must follow in rest up to a boundary.
		e := len(k.edge)
		if e > len(c) && (len(rest) < e || string(rest[:e]) != k.edge || len(rest) > e && rest[e] != '/') {
			break
		}
		n = k
		if n.mount {
			best, ok = n.ref, true
		}
		if len(rest) == e {
			break
		}
		rest = rest[e+1:]
	}
	return best.prefix, best.cluster, ok
}

// activeElsewhere reports whether a sub-cluster of the snapshot other
// than except, named by a mount, lists m and believes it active. A member
// has one role for every sub-cluster that lists it (CallSetRole names
// none), so a demotion owed as a standby of except would take it out of
// that one. A sub-cluster no mount names routes no call and needs no
// member active: without a call the router never tests its belief
// (which, for a sub-cluster listing no active member, is its first), and
// one such table entry would hold the demotion for good.
func (mt *mountTable) activeElsewhere(m netip.AddrPort, except string) bool {
	for name, cs := range mt.clusters {
		if name != except && mt.mounted[name] && cs.members[cs.activeIdx()] == m {
			return true
		}
	}
	return false
}

// tableState is the router's copy of the table as the MountSource holds
// it, from which snapshots are built.
type tableState struct {
	mu struct {
		sync.Mutex // guards every field below
		mounts     map[string]string
		clusters   map[string]*clusterState
		counters   map[string]*clusterCounters // kept across removals
		bad        uint64                      // malformed entries ignored
	}
}

func (t *tableState) init() {
	t.mu.mounts = map[string]string{}
	t.mu.clusters = map[string]*clusterState{}
	t.mu.counters = map[string]*clusterCounters{}
}

// countersLocked returns the counters of sub-cluster name, creating them.
func (t *tableState) countersLocked(name string) *clusterCounters {
	c := t.mu.counters[name]
	if c == nil {
		c = new(clusterCounters)
		t.mu.counters[name] = c
	}
	return c
}

// apply folds one change of the MountSource into the table and publishes
// a new snapshot. Malformed keys and values are counted and ignored (a
// malformed value deletes the entry it replaces).
func (r *Router) apply(key string, value []byte, deleted bool) {
	rest, ok := strings.CutPrefix(key, r.cfg.TablePrefix)
	if !ok {
		return
	}
	t := &r.tbl
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case strings.HasPrefix(rest, mountDir+"/"):
		prefix := rest[len(mountDir):]
		name := string(value)
		if deleted || !ValidPrefix(prefix) || !ValidClusterName(name) {
			if !deleted {
				t.mu.bad++
			}
			delete(t.mu.mounts, prefix)
			break
		}
		t.mu.mounts[prefix] = name
	case strings.HasPrefix(rest, clusterDir):
		name := rest[len(clusterDir):]
		var ms []MemberSpec
		var err error
		if !deleted {
			if ms, err = ParseMembers(value); err != nil || !ValidClusterName(name) || !heldMembers(ms) {
				t.mu.bad++
				deleted = true
			}
		}
		old := t.mu.clusters[name]
		if deleted {
			delete(t.mu.clusters, name)
			break
		}
		cs := &clusterState{name: name, ctr: t.countersLocked(name)}
		act := 0
		for i, m := range ms {
			cs.members = append(cs.members, m.Addr)
			if m.Role == RoleActive {
				act = i
			}
		}
		if old != nil {
			// Keep what the router learned about who is active.
			cur := old.members[old.activeIdx()]
			for i, a := range cs.members {
				if a == cur {
					act = i
				}
			}
		}
		cs.setActive(act)
		t.mu.clusters[name] = cs
		var known []netip.AddrPort
		if old != nil {
			known = old.members
		}
		r.fo.owe(cs, known)
	default:
		t.mu.bad++
		return
	}
	r.publishLocked()
}

// heldMembers rewrites the members of ms in the form the router holds
// them, the engine's name for a peer (rfc.PeerAddr: a link-local zone as
// this host's interface index, as it is when the value is read), and
// reports whether they are still distinct. A cluster value keeps a zone as written, for it is shared by
// every node and an index is one machine's own; held as written,
// "fe80::1%eth0" and "fe80::1%2" were two members to the router, so a
// member listed under both spellings in two sub-clusters was demoted as
// one's standby while the other routed to it as active. Two members of
// one value that name the same peer here make the value malformed on
// this router, as the IPv4-mapped form does everywhere (ParseMembers).
func heldMembers(ms []MemberSpec) bool {
	for i := range ms {
		ms[i].Addr = rfc.PeerAddr(ms[i].Addr)
		for _, o := range ms[:i] {
			if o.Addr == ms[i].Addr {
				return false
			}
		}
	}
	return true
}

// carryOver makes the member cs believes active the active one of the
// state that replaced cs in the table, if the member is listed there. A
// failover decision on cs that changed its view calls it, with
// cs.promote held, once the decision is made: a table change that came
// during the decision built the new state from the view before it.
// Decisions are made on the one failover goroutine, so the new state has
// made none meanwhile.
func (r *Router) carryOver(cs *clusterState) {
	t := &r.tbl
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.mu.clusters[cs.name]
	if cur == nil || cur == cs {
		return
	}
	if idx := slices.Index(cur.members, cs.members[cs.activeIdx()]); idx >= 0 {
		cur.setActive(idx)
	}
}

// publishLocked builds and publishes a snapshot of the table.
func (r *Router) publishLocked() {
	t := &r.tbl
	r.table.Store(newMountTable(t.mu.mounts, t.mu.clusters))
}

// newMountTable returns a snapshot of mounts (prefix to sub-cluster name)
// and clusters (by name), which it copies.
func newMountTable(mounts map[string]string, clusters map[string]*clusterState) *mountTable {
	mt := &mountTable{root: new(mountNode), clusters: make(map[string]*clusterState, len(clusters)),
		mounted: make(map[string]bool, len(mounts))}
	for k, v := range mounts {
		addMount(mt.root, k, v)
		mt.mounted[v] = true
	}
	compact(mt.root)
	for k, v := range clusters {
		mt.clusters[k] = v
	}
	return mt
}

// load subscribes to the table and reads it: Watch first, then List, so
// that no change is missed. Entries the watch has already delivered are
// not overwritten by the (possibly older) listing.
func (r *Router) load(ctx context.Context) error {
	var seenMu sync.Mutex
	seen := map[string]bool{}
	listing := true
	stop, err := r.src.Watch(r.cfg.TablePrefix, func(key string, value []byte, deleted bool) {
		seenMu.Lock()
		if listing {
			seen[key] = true
		}
		seenMu.Unlock()
		r.apply(key, value, deleted)
	})
	if err != nil {
		return err
	}
	kvs, err := r.src.List(ctx, r.cfg.TablePrefix)
	if err != nil {
		stop()
		return err
	}
	seenMu.Lock()
	for _, kv := range kvs {
		if !seen[kv.Key] {
			r.apply(kv.Key, kv.Value, false)
		}
	}
	listing = false
	seenMu.Unlock()
	r.stopWatch = stop
	return nil
}

// Resolution is the answer of Resolve.
type Resolution struct {
	Prefix  string           // the longest mount prefix of the path
	Cluster string           // the sub-cluster it names
	Members []netip.AddrPort // its members, in table order
	Active  netip.AddrPort   // the member the router believes active
}

// Resolve returns where the router would send a call for path, from its
// current snapshot of the table. ENOENT if no mount matches or the mount
// names a sub-cluster the table does not define.
func (r *Router) Resolve(path string) (Resolution, error) {
	mt := r.table.Load()
	prefix, name, ok := mt.lookup([]byte(path))
	if !ok {
		return Resolution{}, wire.ENOENT
	}
	cs := mt.clusters[name]
	if cs == nil {
		return Resolution{Prefix: prefix, Cluster: name}, wire.ENOENT
	}
	return Resolution{Prefix: prefix, Cluster: name, Members: append([]netip.AddrPort(nil), cs.members...),
		Active: cs.members[cs.activeIdx()]}, nil
}
