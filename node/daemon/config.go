// Package daemon assembles a fastcall node from a configuration: one rfc
// endpoint, the built-in calls, and the services of its roles. The rfcd
// command is a thin shell around it. The configuration file format is
// documented in docs/RFCD.md with an example in docs/rfcd.example.json.
package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"

	"fastcall/node/registry"
	"fastcall/node/registry/center"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/wire"
)

// Roles a node may take.
const (
	RoleWorker = "worker" // runs tasks for masters (heartbeat master/worker channels)
	RoleMaster = "master" // assigns tasks to workers; serves the task-run call
	RoleCenter = "center" // a registry center
	RoleAgent  = "agent"  // the registry's node agent: pushed registrations into a shm map
	RoleRouter = "router" // federation router in front of sub-clusters, with an audit trail
	RoleMember = "member" // a sub-cluster member serving the path-keyed namespace store
	RoleDisp   = "dispatcher"
)

var knownRoles = map[string]bool{RoleWorker: true, RoleMaster: true, RoleCenter: true, RoleAgent: true,
	RoleRouter: true, RoleMember: true, RoleDisp: true}

// minLease is the shortest registry.lease: one that renewals at a third
// of it keep alive across a few lost datagrams.
const minLease = time.Second

// Duration is a time.Duration written as a string ("200ms") in JSON.
type Duration struct{ time.Duration }

// UnmarshalJSON accepts "1.5s" style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeOf(time.Duration(0))}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: s, Type: reflect.TypeOf(time.Duration(0))}
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// EngineConfig tunes the call engine; zero fields take rfc's defaults.
type EngineConfig struct {
	Workers        int      `json:"workers"`         // handler goroutines (default 4)
	Queue          int      `json:"queue"`           // requests waiting for a worker before EBUSY (default 1024)
	MaxDatagram    int      `json:"max_datagram"`    // bytes; all nodes must agree (default 1400)
	MaxPending     int      `json:"max_pending"`     // calls in flight from this node (default 4096)
	DefaultTimeout Duration `json:"default_timeout"` // deadline of calls without one (default 2s)
	MaxAge         Duration `json:"max_age"`         // replay bound on request stamps (default 30s)
}

// HeartbeatConfig configures liveness; members are the other nodes this
// node watches (and that watch it).
type HeartbeatConfig struct {
	Members  []string `json:"members"`  // "IP:PORT" of the other members
	Interval Duration `json:"interval"` // probe period (default 200ms)
}

// CenterConfig configures the center role.
type CenterConfig struct {
	DataDir string `json:"data_dir"` // log and snapshot directory (required)
	Peer    string `json:"peer"`     // the other center "IP:PORT"; empty: single center
	Index   int    `json:"index"`    // 0 or 1; the two centers differ (0 wins simultaneous writes)
	Fsync   string `json:"fsync"`    // always (default), interval, never
}

// ServiceConfig is a registration the agent keeps alive.
type ServiceConfig struct {
	Name string `json:"name"` // service name
	Addr string `json:"addr"` // address clients use; default the node's addr
	Meta string `json:"meta"` // free-form metadata
}

// RegistryConfig configures the agent role (and clients of the registry).
type RegistryConfig struct {
	Centers  []string        `json:"centers"`  // one or two centers "IP:PORT"
	ShmFile  string          `json:"shm_file"` // the node's map file (bare name: under /dev/shm)
	Prefixes []string        `json:"prefixes"` // prefixes written to the map (default ["svc/"])
	Services []ServiceConfig `json:"services"` // registrations of this node
	Lease    Duration        `json:"lease"`    // lease of those registrations (default 10s)
}

// RouterConfig configures the router role; the mount table lives in the
// registry (registry.centers).
type RouterConfig struct {
	AuditDir         string   `json:"audit_dir"`          // audit files (default "audit")
	AuditRotateBytes int64    `json:"audit_rotate_bytes"` // rotation size (default 64 MiB)
	ForwardTimeout   Duration `json:"forward_timeout"`    // per forwarding attempt (default 500ms)
}

// DispatcherConfig configures the dispatcher role.
type DispatcherConfig struct {
	// Targets are the only addresses a remote dispatch-submit may name
	// ("IP:PORT"); empty: the heartbeat members. A dispatcher with
	// neither refuses every remote submit (EPERM).
	Targets []string `json:"targets"`
}

// MemberConfig configures the member role.
type MemberConfig struct {
	Active bool `json:"active"` // start as the sub-cluster's active member (default standby)
}

// Config is a node's configuration: the JSON file, then flags on top.
type Config struct {
	Node        uint32           `json:"node"`          // node id (0..4294967295)
	Addr        string           `json:"addr"`          // UDP listen address "IP:PORT" (default 127.0.0.1:7000)
	KeyFile     string           `json:"key_file"`      // cluster key file, mode 0600; required unless insecure
	PrevKeyFile string           `json:"prev_key_file"` // previous key accepted during a rotation
	Insecure    bool             `json:"insecure"`      // run without a key (checksums only)
	LogLevel    string           `json:"log_level"`     // debug, info, warn, error (default info)
	Roles       []string         `json:"roles"`         // any of: worker, master, center, agent
	Engine      EngineConfig     `json:"engine"`
	Heartbeat   HeartbeatConfig  `json:"heartbeat"`
	Center      CenterConfig     `json:"center"`
	Registry    RegistryConfig   `json:"registry"`
	Router      RouterConfig     `json:"router"`
	Member      MemberConfig     `json:"member"`
	Dispatcher  DispatcherConfig `json:"dispatcher"`
	MetricsAddr string           `json:"metrics_addr"` // Prometheus /metrics over HTTP: PORT or :PORT (loopback) or IP:PORT; empty: off
}

// Default returns the configuration rfcd starts from.
func Default() Config {
	return Config{Addr: "127.0.0.1:7000", LogLevel: "info"}
}

// bad returns the error of a field of the configuration file: an
// *rfc.ConfigError of scope "rfcd" (EINVAL) naming the field as the file
// spells it.
func bad(field, why string) error { return rfc.BadConfig("rfcd", field, nil, why) }

// MaxConfigBytes bounds a configuration file: a large file is a wrong
// path (a log, an image), which would be read whole into memory before
// the decoder finds it is no configuration.
const MaxConfigBytes = 1 << 20

// Load reads a JSON configuration over c, at most MaxConfigBytes. Unknown fields are errors, and
// so are a field given twice in one object (field names match without
// regard to case, so "workers" and "Workers" are the same field) and
// anything but white space after the object: either would otherwise be
// settled silently, by the last copy or by ignoring the rest.
func Load(r io.Reader, c *Config) error {
	b, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
	if err != nil {
		return err
	}
	if len(b) > MaxConfigBytes {
		return fmt.Errorf("rfcd config: more than %d bytes: not a configuration file", MaxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case asType(err, &ute):
			if ute.Type == reflect.TypeOf(time.Duration(0)) {
				return bad(ute.Field, "want a duration string such as \"200ms\"")
			}
			return bad(ute.Field, "want "+ute.Type.String())
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return bad(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
		}
		return bad("(file)", err.Error())
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return bad("(file)", "data after the configuration object")
	}
	f, err := duplicateField(json.NewDecoder(bytes.NewReader(b)), "")
	if err != nil {
		return bad("(file)", err.Error())
	}
	if f != "" {
		return bad(f, "given twice")
	}
	return nil
}

// duplicateField reads one JSON value from dec and returns the path of
// the first field that an object in it holds twice (path names the value
// itself: "engine", "registry.services[1]"), or "" when none does.
func duplicateField(dec *json.Decoder, path string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", err
			}
			k, _ := kt.(string)
			p := k
			if path != "" {
				p = path + "." + k
			}
			fk := strings.ToLower(k)
			if seen[fk] {
				return p, nil
			}
			seen[fk] = true
			if f, err := duplicateField(dec, p); f != "" || err != nil {
				return f, err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if f, err := duplicateField(dec, fmt.Sprintf("%s[%d]", path, i)); f != "" || err != nil {
				return f, err
			}
		}
	default:
		return "", nil
	}
	_, err = dec.Token() // the closing delimiter
	return "", err
}

func asType(err error, t **json.UnmarshalTypeError) bool {
	e, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*t = e
	}
	return ok
}

// LoadFile is Load from a file path, which must name a regular file: a
// device such as /dev/zero never ends and a FIFO blocks the open until a
// writer comes.
func LoadFile(path string, c *Config) error {
	// O_NONBLOCK: a FIFO is refused, not waited on; the file checked is
	// the file opened (as keyfile.Read does).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	return Load(f, c)
}

// Validate checks the rules of the file itself and names the first field
// that breaks one: addresses, key files, log level, roles and what each
// role requires, the fsync policy. The ranges of the values a package
// takes (engine, heartbeat.interval, center, router, dispatcher) are that
// package's to check: Start builds each package's configuration with the
// file's values, zero meaning the package's default, and maps a package's
// refusal to the file's field (fileError).
func (c *Config) Validate() error {
	if _, err := netip.ParseAddrPort(c.Addr); err != nil {
		return bad("addr", "want IP:PORT")
	}
	switch {
	case c.KeyFile == "" && !c.Insecure:
		return bad("key_file", "a cluster key file is required (or insecure: true)")
	case c.KeyFile != "" && c.Insecure:
		return bad("insecure", "excludes key_file")
	case c.PrevKeyFile != "" && c.KeyFile == "":
		return bad("prev_key_file", "needs key_file")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "want debug, info, warn or error")
	}
	seen := map[string]bool{}
	for _, r := range c.Roles {
		if !knownRoles[r] {
			return bad("roles", fmt.Sprintf("unknown role %q", r))
		}
		if seen[r] {
			return bad("roles", fmt.Sprintf("role %q twice", r))
		}
		seen[r] = true
	}
	if err := checkAddrList("heartbeat.members", "member", c.Heartbeat.Members); err != nil {
		return err
	}
	if (seen[RoleWorker] || seen[RoleMaster]) && len(c.Heartbeat.Members) == 0 {
		return bad("heartbeat.members", "masters and workers need members to watch")
	}
	if seen[RoleCenter] {
		cc := c.Center
		switch {
		case cc.DataDir == "":
			return bad("center.data_dir", "required by the center role")
		case cc.Fsync != "" && cc.Fsync != "always" && cc.Fsync != "interval" && cc.Fsync != "never":
			return bad("center.fsync", "want always, interval or never")
		}
		if cc.Peer != "" {
			if err := c.checkCenterPeer(); err != nil {
				return err
			}
		}
	}
	if seen[RoleAgent] {
		r := c.Registry
		if len(r.Centers) == 0 || len(r.Centers) > 2 {
			return bad("registry.centers", "the agent role needs one or two centers")
		}
		if r.ShmFile == "" {
			return bad("registry.shm_file", "required by the agent role")
		}
		if len(r.Prefixes) > center.DefaultMaxPrefixesPerNode {
			// An rfcd center refuses a node's subscriptions past its
			// bound (ENOSPC) and the agent's watch stops at the
			// refusal: the prefixes after it are never mirrored.
			return bad("registry.prefixes", fmt.Sprintf("at most %d, the centers' bound per node", center.DefaultMaxPrefixesPerNode))
		}
		names := make(map[string]int, len(r.Services)) // index by name
		for i, s := range r.Services {
			// One instance per name and node: a second entry would
			// replace the first at the centers.
			if j, ok := names[s.Name]; ok {
				return bad(fmt.Sprintf("registry.services[%d].name", i), fmt.Sprintf("the name of registry.services[%d] again", j))
			}
			names[s.Name] = i
			switch {
			case s.Name == "":
				return bad(fmt.Sprintf("registry.services[%d].name", i), "empty")
			case len(s.Name) > registry.MaxNameLen:
				return bad(fmt.Sprintf("registry.services[%d].name", i), fmt.Sprintf("longer than %d bytes", registry.MaxNameLen))
			case strings.IndexByte(s.Name, sdk.InstanceSep) >= 0:
				return bad(fmt.Sprintf("registry.services[%d].name", i), fmt.Sprintf("holds %q, the instance separator", sdk.InstanceSep))
			case len(s.Addr) > registry.MaxAddrLen:
				return bad(fmt.Sprintf("registry.services[%d].addr", i), fmt.Sprintf("longer than %d bytes", registry.MaxAddrLen))
			}
			// The centers refuse (EMSGSIZE) an entry that would not fit
			// one push datagram: refused here, the bound is named.
			addrLen := len(s.Addr)
			if addrLen == 0 {
				// The node's addr, its port as bound (port 0 picks one).
				ap := netip.MustParseAddrPort(c.Addr)
				addrLen = len(netip.AddrPortFrom(ap.Addr(), 65535).String())
			}
			dg := c.Engine.MaxDatagram
			if dg == 0 {
				dg = wire.DefaultMaxDatagram
			}
			if room := registry.MaxServiceMeta(dg, s.Name, c.Node, addrLen); len(s.Meta) > room {
				return bad(fmt.Sprintf("registry.services[%d].meta", i),
					fmt.Sprintf("longer than %d bytes, what fits one %d-byte datagram with this name and addr", room, dg))
			}
		}
		if len(r.Services) > 0 && c.Node == 0 {
			// The centers key an instance by its node id and refuse 0.
			return bad("node", "registry.services need a node id other than 0")
		}
		if l := r.Lease.Duration; l != 0 && (l < minLease || l > center.DefaultMaxLease) {
			// Past the centers' bound every registration is refused;
			// below a second a lease can expire between the agent's
			// renewals, and the instance flaps in and out.
			return bad("registry.lease", fmt.Sprintf("0 (the default) or between %v and %v", minLease, center.DefaultMaxLease))
		}
	}
	if seen[RoleRouter] {
		if len(c.Registry.Centers) == 0 {
			return bad("registry.centers", "the router role keeps its mount table in the registry")
		}
		if seen[RoleAgent] {
			return bad("roles", "router and agent both watch the registry; run them on different nodes")
		}
		if seen[RoleMember] {
			return bad("roles", "router and member both serve the namespace calls; run them on different nodes")
		}
	}
	peer, hasPeer := c.centerPeer()
	for i, a := range c.Dispatcher.Targets {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return bad(fmt.Sprintf("dispatcher.targets[%d]", i), "want IP:PORT")
		}
		if hasPeer && sameAddr(ap, peer) {
			return bad(fmt.Sprintf("dispatcher.targets[%d]", i), "is center.peer: the peer center answers this node's address as its peer")
		}
	}
	// The registry client takes each entry for a center of its own: a
	// second copy made it fail over from a center to itself.
	return checkAddrList("registry.centers", "center", c.Registry.Centers)
}

// checkAddrList checks the list of addresses at field: each entry
// IP:PORT, and no address twice (an IPv4-mapped IPv6 address is its IPv4
// one); what names an entry in the error ("the center of ... again").
func checkAddrList(field, what string, list []string) error {
	seen := make(map[netip.AddrPort]int, len(list)) // index by unmapped address
	for i, s := range list {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return bad(fmt.Sprintf("%s[%d]", field, i), "want IP:PORT")
		}
		if j, ok := seen[rfc.PeerAddr(ap)]; ok {
			return bad(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("the %s of %s[%d] again", what, field, j))
		}
		seen[rfc.PeerAddr(ap)] = i
	}
	return nil
}

// checkCenterPeer checks center.peer: a valid address, not this node's
// own, and watched by this node's heartbeat (listed in heartbeat.members).
// The center learns of its peer's death only from the heartbeat service
// (the engine's MarkDead); a peer nobody watches is never found dead, and
// the survivor would answer every write EAGAIN for good.
func (c *Config) checkCenterPeer() error {
	peer, err := netip.ParseAddrPort(c.Center.Peer)
	if err != nil {
		return bad("center.peer", "want IP:PORT")
	}
	if self, err := netip.ParseAddrPort(c.Addr); err == nil && sameAddr(peer, self) {
		return bad("center.peer", "is this node's own addr; name the other center")
	}
	for _, m := range c.Heartbeat.Members {
		if a, err := netip.ParseAddrPort(m); err == nil && sameAddr(a, peer) {
			return nil
		}
	}
	return bad("center.peer", "must also be listed in heartbeat.members: only the heartbeat finds the peer dead")
}

// sameAddr compares two addresses in the form the engine names senders
// (rfc.PeerAddr: IPv4-mapped unmapped, a link-local zone as its index).
func sameAddr(a, b netip.AddrPort) bool { return rfc.PeerAddr(a) == rfc.PeerAddr(b) }

// DispatchTargets returns the addresses a remote dispatch-submit may name:
// dispatcher.targets, or the heartbeat members when it is empty, never
// the peer center of a center node. A center answers the calls between
// centers from its peer's address only, and a dispatcher sends from its
// node's address: on the peer's node it would pass any sender's
// reg-touch or reg-replicate on as the peer's. Call it on a validated
// configuration.
func (c *Config) DispatchTargets() []netip.AddrPort {
	list := c.Dispatcher.Targets
	if len(list) == 0 {
		list = c.Heartbeat.Members
	}
	peer, hasPeer := c.centerPeer()
	out := make([]netip.AddrPort, 0, len(list))
	for _, a := range list {
		if ap, err := netip.ParseAddrPort(a); err == nil && !(hasPeer && sameAddr(ap, peer)) {
			out = append(out, ap)
		}
	}
	return out
}

// centerPeer returns center.peer when this node is a center with a peer.
func (c *Config) centerPeer() (netip.AddrPort, bool) {
	if c.Center.Peer == "" {
		return netip.AddrPort{}, false
	}
	hasCenter := false
	for _, r := range c.Roles {
		hasCenter = hasCenter || r == RoleCenter
	}
	peer, err := netip.ParseAddrPort(c.Center.Peer)
	return peer, hasCenter && err == nil
}

// engineConfig turns the engine section into an rfc.Config: a zero field
// keeps rfc's default, any other value is passed on for rfc to check.
func (c *Config) engineConfig() rfc.Config {
	r := rfc.DefaultConfig()
	r.Addr = c.Addr
	r.NodeID = c.Node
	for _, role := range c.Roles {
		if role == RoleMaster {
			// Each task-run holds a worker while the worker node
			// answers. (A router forwards without holding one.)
			r.Workers = 32
		}
	}
	e := c.Engine
	if e.Workers != 0 {
		r.Workers = e.Workers
	}
	if e.Queue != 0 {
		r.QueueLen = e.Queue
	}
	if e.MaxDatagram != 0 {
		r.MaxDatagram = e.MaxDatagram
	}
	if e.MaxPending != 0 {
		r.MaxPending = e.MaxPending
	}
	if e.DefaultTimeout.Duration != 0 {
		r.DefaultTimeout = e.DefaultTimeout.Duration
	}
	if e.MaxAge.Duration != 0 {
		r.MaxAge = e.MaxAge.Duration
	}
	return r
}

// fileFields names the field of the file that sets each package field
// rfcd passes on, keyed by the scope and field of the package's
// *rfc.ConfigError.
var fileFields = map[string]string{
	"rfc.Addr":                  "addr",
	"rfc.Key":                   "key_file",
	"rfc.PrevKey":               "prev_key_file",
	"rfc.Workers":               "engine.workers",
	"rfc.QueueLen":              "engine.queue",
	"rfc.MaxDatagram":           "engine.max_datagram",
	"rfc.MaxPending":            "engine.max_pending",
	"rfc.DefaultTimeout":        "engine.default_timeout",
	"rfc.MaxAge":                "engine.max_age",
	"heartbeat.Interval":        "heartbeat.interval",
	"heartbeat.ProbeTimeout":    "heartbeat.interval", // the heartbeat's timers all follow the interval
	"heartbeat.RoundTimeout":    "heartbeat.interval",
	"heartbeat.ReprobeInterval": "heartbeat.interval",
	"heartbeat.Tick":            "heartbeat.interval",
	"registry.Index":            "center.index",
	"route.AuditRotateBytes":    "router.audit_rotate_bytes",
	"route.ForwardTimeout":      "router.forward_timeout",
	"dispatch.RemoteTargets":    "dispatcher.targets",
}

// fileError maps a package's refusal of its configuration to the file:
// an *rfc.ConfigError of a field the file sets becomes one of scope
// "rfcd" naming that field, with the package's value and reason; one of a
// field the table does not name becomes one naming section, the part of
// the file the package was configured from. Other errors pass unchanged.
func fileError(err error, section string) error {
	if err == nil {
		return nil
	}
	var ce *rfc.ConfigError
	if errors.As(err, &ce) {
		if ce.Scope == "rfcd" {
			return err
		}
		if f, ok := fileFields[ce.Scope+"."+ce.Field]; ok {
			return &rfc.ConfigError{Scope: "rfcd", Field: f, Value: ce.Value, Why: ce.Why}
		}
		return &rfc.ConfigError{Scope: "rfcd", Field: section, Why: err.Error()}
	}
	return err
}
