package route

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sort"
	"strings"

	"fastcall/rfc"
	"fastcall/wire"
)

// The helpers below back `rfcctl route ls|add|del|resolve`: they read and
// write the mount table in a MountSource (the registry's key/value store
// in a cluster) under a table prefix (Config.TablePrefix, normally
// DefaultTablePrefix). Routers pick the changes up by subscription.

// Mount is one mount of the table.
type Mount struct {
	Prefix  string
	Cluster string
}

// Cluster is one sub-cluster of the table.
type Cluster struct {
	Name    string
	Members []MemberSpec
}

// Table is the mount table as a MountSource holds it.
type Table struct {
	Mounts   []Mount   // by prefix
	Clusters []Cluster // by name
	Bad      []string  // keys whose value is malformed
}

// ListTable reads the table under tablePrefix.
func ListTable(ctx context.Context, src MountSource, tablePrefix string) (Table, error) {
	kvs, err := src.List(ctx, tablePrefix)
	if err != nil {
		return Table{}, err
	}
	var t Table
	for _, kv := range kvs {
		rest := kv.Key[len(tablePrefix):]
		switch {
		case strings.HasPrefix(rest, mountDir+"/"):
			p, c := rest[len(mountDir):], string(kv.Value)
			if !ValidPrefix(p) || !ValidClusterName(c) {
				t.Bad = append(t.Bad, kv.Key)
				continue
			}
			t.Mounts = append(t.Mounts, Mount{p, c})
		case strings.HasPrefix(rest, clusterDir):
			name := rest[len(clusterDir):]
			ms, err := ParseMembers(kv.Value)
			if err != nil || !ValidClusterName(name) {
				t.Bad = append(t.Bad, kv.Key)
				continue
			}
			t.Clusters = append(t.Clusters, Cluster{name, ms})
		default:
			t.Bad = append(t.Bad, kv.Key)
		}
	}
	sort.Slice(t.Mounts, func(i, j int) bool { return t.Mounts[i].Prefix < t.Mounts[j].Prefix })
	sort.Slice(t.Clusters, func(i, j int) bool { return t.Clusters[i].Name < t.Clusters[j].Name })
	return t, nil
}

// AddMount mounts prefix on sub-cluster cluster (replacing an earlier
// mount of the same prefix). EINVAL for a malformed prefix or name.
func AddMount(ctx context.Context, st MountStore, tablePrefix, prefix, cluster string) error {
	if !ValidPrefix(prefix) || !ValidClusterName(cluster) {
		return wire.EINVAL
	}
	return st.Put(ctx, MountKey(tablePrefix, prefix), []byte(cluster))
}

// DelMount removes the mount of prefix; ENOENT if there is none.
func DelMount(ctx context.Context, st MountStore, tablePrefix, prefix string) error {
	if !ValidPrefix(prefix) {
		return wire.EINVAL
	}
	return st.Delete(ctx, MountKey(tablePrefix, prefix))
}

// AddCluster defines (or redefines) sub-cluster name with its members.
// EINVAL for a malformed name or member list.
func AddCluster(ctx context.Context, st MountStore, tablePrefix, name string, members []MemberSpec) error {
	v := EncodeMembers(members)
	if _, err := ParseMembers(v); err != nil || !ValidClusterName(name) {
		return wire.EINVAL
	}
	return st.Put(ctx, ClusterKey(tablePrefix, name), v)
}

// DelCluster removes sub-cluster name; ENOENT if there is none.
func DelCluster(ctx context.Context, st MountStore, tablePrefix, name string) error {
	if !ValidClusterName(name) {
		return wire.EINVAL
	}
	return st.Delete(ctx, ClusterKey(tablePrefix, name))
}

// ResolvePath answers `rfcctl route resolve PATH` from the table in src:
// the longest mount prefix of path, its sub-cluster and members (Active is
// the member the table marks active; a router may have learned another).
// ENOENT if nothing matches.
func ResolvePath(ctx context.Context, src MountSource, tablePrefix, path string) (Resolution, error) {
	t, err := ListTable(ctx, src, tablePrefix)
	if err != nil {
		return Resolution{}, err
	}
	mounts := make(map[string]string, len(t.Mounts))
	for _, m := range t.Mounts {
		mounts[m.Prefix] = m.Cluster
	}
	prefix, name, ok := newMountTable(mounts, nil).lookup([]byte(path))
	if !ok {
		return Resolution{}, wire.ENOENT
	}
	res := Resolution{Prefix: prefix, Cluster: name}
	for _, c := range t.Clusters {
		if c.Name != name {
			continue
		}
		for i, m := range c.Members {
			res.Members = append(res.Members, m.Addr)
			if m.Role == RoleActive || (i == 0 && !res.Active.IsValid()) {
				res.Active = m.Addr
			}
		}
		return res, nil
	}
	return res, wire.ENOENT
}

// RouteStats reads the per-sub-cluster counters of the router at addr
// over CallRouteStats, every page.
func RouteStats(ctx context.Context, ep *rfc.Endpoint, addr netip.AddrPort) ([]ClusterCounters, error) {
	var out []ClusterCounters
	var cur StatsCursor
	for page := 0; page < 1<<16; page++ {
		cs, next, more, err := RouteStatsPage(ctx, ep, addr, cur)
		out = append(out, cs...)
		if err != nil || !more {
			return out, err
		}
		cur = next
	}
	return out, wire.EPROTO
}

// StatsCursor is where a page of CallRouteStats starts: after the last
// sub-cluster name of the page before. The zero value is the first page.
type StatsCursor struct {
	after string
}

// RouteStatsPage reads one page of the per-sub-cluster counters of the
// router at addr, from cur; more is true if another page follows, read
// from next.
func RouteStatsPage(ctx context.Context, ep *rfc.Endpoint, addr netip.AddrPort, cur StatsCursor) (out []ClusterCounters, next StatsCursor, more bool, err error) {
	maxDg := ep.Config().MaxDatagram
	var ps wire.Params
	var rep rfc.Reply
	ps.Reset(make([]byte, maxDg-wire.HeaderSize))
	ps.String(cur.after)
	rfc.AppendPad(&ps, maxDg)
	if err := ep.Call(ctx, addr, CallRouteStats, &ps, &rep); err != nil {
		return nil, next, false, err
	}
	if rep.NParams() < 1 || (rep.NParams()-1)%8 != 0 {
		return nil, next, false, wire.EPROTO
	}
	next = cur
	for i := 1; i+8 <= rep.NParams(); i += 8 {
		c := ClusterCounters{Name: rep.Param(i).Str(), Calls: rep.Param(i + 1).Uint64(),
			Errors: rep.Param(i + 2).Uint64(), Failovers: rep.Param(i + 3).Uint64(),
			P50us: rep.Param(i + 5).Uint64(), P99us: rep.Param(i + 6).Uint64()}
		h := rep.Param(i + 7).Bytes()
		if len(h) != HistBuckets*8 {
			return out, next, false, wire.EPROTO
		}
		for j := range c.Hist {
			c.Hist[j] = binary.BigEndian.Uint64(h[8*j:])
		}
		// Names come in ascending order after the cursor: anything
		// else would page forever or repeat.
		if c.Name <= next.after {
			return out, next, false, wire.EPROTO
		}
		next.after = c.Name
		out = append(out, c)
	}
	more = rep.Param(0).Uint64() != 0
	if more && len(out) == 0 {
		return out, next, false, wire.EPROTO
	}
	return out, next, more, nil
}
