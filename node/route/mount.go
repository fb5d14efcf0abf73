package route

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"fastcall/wire"
)

// KV is one key/value entry of a MountSource.
type KV struct {
	Key   string
	Value []byte
}

// MountSource is where the mount table lives: the registry's key/value
// store in a cluster (so that every router sees the same table), or
// MemMounts on a single node and in tests.
//
// List returns every entry whose key starts with prefix. Watch calls fn
// for every later change under prefix, in the order the changes were
// made, until stop is called; fn must return quickly and must not call
// back into the source. A router calls Watch before List, so a change
// made between the two is seen at least once.
type MountSource interface {
	List(ctx context.Context, prefix string) ([]KV, error)
	Watch(prefix string, fn func(key string, value []byte, deleted bool)) (stop func(), err error)
}

// MountStore is a MountSource that can also be written; the rfcctl route
// helpers (AddMount, DelMount, AddCluster, DelCluster) need one.
type MountStore interface {
	MountSource
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// Key layout under Config.TablePrefix (docs/ROUTE.md, "Mount table").
const (
	mountDir   = "mount"    // + prefix, which starts with "/": value = sub-cluster name
	clusterDir = "cluster/" // + name: value = "active=ADDR standby=ADDR ..."

	// MaxMembers bounds the members of one sub-cluster.
	MaxMembers = 8
	// MaxClusterName bounds a sub-cluster name.
	MaxClusterName = 64
	// MaxZoneLen bounds the IPv6 zone of a member address: an interface
	// name (Linux IFNAMSIZ less its NUL) or index. The audit trail writes
	// the address in each record of a call sent there, and a record
	// longer than the trail's line bound is skipped by the audit query.
	MaxZoneLen = 15
)

// MountKey returns the key of the mount of prefix under tablePrefix.
func MountKey(tablePrefix, prefix string) string { return tablePrefix + mountDir + prefix }

// ClusterKey returns the key of sub-cluster name under tablePrefix.
func ClusterKey(tablePrefix, name string) string { return tablePrefix + clusterDir + name }

// Role is a member's role in its sub-cluster.
type Role uint8

const (
	RoleStandby Role = iota
	RoleActive
)

func (r Role) String() string {
	if r == RoleActive {
		return "active"
	}
	return "standby"
}

// MemberSpec is one member of a sub-cluster as the table lists it.
type MemberSpec struct {
	Addr netip.AddrPort
	Role Role
}

// EncodeMembers renders a member list as a cluster value.
func EncodeMembers(ms []MemberSpec) []byte {
	var b []byte
	for i, m := range ms {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, m.Role.String()...)
		b = append(b, '=')
		b = m.Addr.AppendTo(b)
	}
	return b
}

// ParseMembers parses a cluster value: space-separated role=addr fields,
// role "active" or "standby", addr an IP:PORT whose zone, if any, is at
// most MaxZoneLen bytes, 1 to MaxMembers members, at most one active.
// EINVAL for anything else.
func ParseMembers(v []byte) ([]MemberSpec, error) {
	fs := strings.Fields(string(v))
	if len(fs) == 0 || len(fs) > MaxMembers {
		return nil, wire.EINVAL
	}
	out := make([]MemberSpec, 0, len(fs))
	actives := 0
	for _, f := range fs {
		role, addr, ok := strings.Cut(f, "=")
		if !ok {
			return nil, wire.EINVAL
		}
		var m MemberSpec
		switch role {
		case "active":
			m.Role = RoleActive
			actives++
		case "standby":
		default:
			return nil, wire.EINVAL
		}
		a, err := netip.ParseAddrPort(addr)
		if err != nil || len(a.Addr().Zone()) > MaxZoneLen {
			return nil, wire.EINVAL
		}
		// The IPv4-mapped form names the same member (datagrams from
		// it arrive unmapped): kept mapped, a member listed in both
		// forms was two members to the router, which demoted it as the
		// standby it owed a demotion while routing to it as active. A
		// zone is kept as written: the value is shared by every node,
		// and an interface's index is this machine's own. A router
		// holds the members in the engine's form (heldMembers).
		m.Addr = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		for _, o := range out {
			if o.Addr == m.Addr {
				return nil, wire.EINVAL
			}
		}
		out = append(out, m)
	}
	if actives > 1 {
		return nil, wire.EINVAL
	}
	return out, nil
}

// ValidPrefix reports whether p is a valid mount prefix: it starts with
// "/", has no trailing "/" (except the root "/"), no empty component, and
// is at most MaxPathLen bytes.
func ValidPrefix(p string) bool {
	if len(p) == 0 || p[0] != '/' || len(p) > MaxPathLen {
		return false
	}
	if p == "/" {
		return true
	}
	return p[len(p)-1] != '/' && !strings.Contains(p, "//")
}

// ValidClusterName reports whether n is 1 to MaxClusterName bytes of
// letters, digits, '.', '_' and '-'.
func ValidClusterName(n string) bool {
	if len(n) == 0 || len(n) > MaxClusterName {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// mountRef is one mount: its prefix and the sub-cluster it names.
type mountRef struct{ prefix, cluster string }

// MemMounts is an in-memory MountStore for a single node and for tests.
// Watch callbacks run on the goroutine that calls Put or Delete, in
// order. The zero value is not usable; call NewMemMounts.
type MemMounts struct {
	mu struct {
		sync.Mutex // guards m and watchers; held while callbacks run, so they see changes in order
		m          map[string][]byte
		watchers   map[int]memWatcher
		next       int
	}
}

type memWatcher struct {
	prefix string
	fn     func(key string, value []byte, deleted bool)
}

// NewMemMounts returns an empty store.
func NewMemMounts() *MemMounts {
	s := &MemMounts{}
	s.mu.m = map[string][]byte{}
	s.mu.watchers = map[int]memWatcher{}
	return s
}

// List implements MountSource; entries come in key order.
func (s *MemMounts) List(_ context.Context, prefix string) ([]KV, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []KV
	for k, v := range s.mu.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, KV{k, append([]byte(nil), v...)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Watch implements MountSource.
func (s *MemMounts) Watch(prefix string, fn func(key string, value []byte, deleted bool)) (func(), error) {
	if fn == nil {
		return nil, wire.EINVAL
	}
	s.mu.Lock()
	id := s.mu.next
	s.mu.next++
	s.mu.watchers[id] = memWatcher{prefix, fn}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.mu.watchers, id)
		s.mu.Unlock()
	}, nil
}

// Put implements MountStore.
func (s *MemMounts) Put(_ context.Context, key string, value []byte) error {
	v := append([]byte(nil), value...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.m[key] = v
	s.notifyLocked(key, v, false)
	return nil
}

// Delete implements MountStore; ENOENT if the key is absent.
func (s *MemMounts) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mu.m[key]; !ok {
		return wire.ENOENT
	}
	delete(s.mu.m, key)
	s.notifyLocked(key, nil, true)
	return nil
}

func (s *MemMounts) notifyLocked(key string, v []byte, deleted bool) {
	for _, w := range s.mu.watchers {
		if strings.HasPrefix(key, w.prefix) {
			w.fn(key, v, deleted)
		}
	}
}
