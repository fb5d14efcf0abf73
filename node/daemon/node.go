package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"fastcall/node/builtin"
	"fastcall/node/dispatch"
	"fastcall/node/heartbeat"
	"fastcall/node/keyfile"
	"fastcall/node/registry/agent"
	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/route"
	"fastcall/rfc"
	"fastcall/wire"
)

// Calls the daemon itself serves (in the range reserved for rfcd).
const (
	// CallTaskRun, on a master: start a task on a worker and wait for its
	// outcome. Request (str worker "IP:PORT", u64 kind, bytes payload);
	// reply (bytes result, u64 incarnation the task ran under). Errors:
	// the task's (ENODEAD when the worker was lost, ESTALE for a result
	// of an incarnation given up on), EINVAL for a bad address.
	CallTaskRun uint16 = wire.CallToolBase + 0x10
)

// Task kinds the worker role runs.
const (
	// TaskSleep sleeps for the big-endian u64 milliseconds of its payload
	// (at most 60 s), in steps, stopping at once when cancelled.
	TaskSleep uint64 = 1
	// TaskEcho returns its payload.
	TaskEcho uint64 = 2
)

// Node is a running fastcall node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	Ep     *rfc.Endpoint
	Count  *builtin.Counter
	HB     *heartbeat.Service
	Master *heartbeat.Master
	Worker *heartbeat.Worker
	Center *center.Center
	Agent  *agent.Agent
	Reg    *client.Client // for the router and dispatcher roles
	Router *route.Router
	Member *route.Member
	Disp   *dispatch.Dispatcher

	metrics *metricsServer // nil when metrics_addr is empty
	// The Close of each role started, in the order they started: Stop
	// runs them backwards, so a role is stopped before those it may
	// use, and a role Start adds is stopped with no list to keep here.
	stops []func()
}

// Start brings a node up: endpoint, built-in calls, then each role. Every
// call is registered before the endpoint reads its first request.
func Start(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var metricsAddr string
	if cfg.MetricsAddr != "" {
		var err error
		if metricsAddr, err = MetricsListenAddr(cfg.MetricsAddr); err != nil {
			return nil, bad("metrics_addr", err.Error())
		}
	}
	rc := cfg.engineConfig()
	rc.Logger = log
	if cfg.KeyFile != "" {
		key, err := keyfile.Read(cfg.KeyFile)
		if err != nil {
			return nil, bad("key_file", err.Error())
		}
		rc.Key = key
		if rc.PrevKey, err = keyfile.ReadPrev(cfg.PrevKeyFile); err != nil {
			return nil, bad("prev_key_file", err.Error())
		}
		log.Info("keys active", "key", keyfile.ID(rc.Key), "prev", keyfile.ID(rc.PrevKey))
	} else {
		log.Warn("running without a cluster key: datagrams are not authenticated; anyone who can reach this port can call it")
	}
	ep, err := rfc.Open(rc)
	if err != nil {
		return nil, fileError(err, "engine")
	}
	n := &Node{cfg: cfg, log: log, Ep: ep}
	fail := func(err error) (*Node, error) {
		n.Stop()
		return nil, err
	}
	if n.Count, err = builtin.Register(ep); err != nil {
		return fail(err)
	}
	roles := map[string]bool{}
	for _, r := range cfg.Roles {
		roles[r] = true
	}
	if len(cfg.Heartbeat.Members) > 0 {
		hc := heartbeat.DefaultConfig()
		if cfg.Heartbeat.Interval.Duration != 0 {
			hc = hc.WithInterval(cfg.Heartbeat.Interval.Duration)
		}
		hc.Logger = log
		var members []netip.AddrPort
		for _, m := range cfg.Heartbeat.Members {
			members = append(members, netip.MustParseAddrPort(m))
		}
		if n.HB, err = heartbeat.Start(ep, hc, members); err != nil {
			return fail(fileError(err, "heartbeat.interval"))
		}
		n.stops = append(n.stops, n.HB.Close)
	}
	if roles[RoleWorker] {
		if n.Worker, err = heartbeat.NewWorker(n.HB, heartbeat.DefaultWorkerConfig(), runTask); err != nil {
			return fail(err)
		}
		n.stops = append(n.stops, n.Worker.Close)
	}
	if roles[RoleMaster] {
		if n.Master, err = heartbeat.NewMaster(n.HB, heartbeat.DefaultMasterConfig()); err != nil {
			return fail(err)
		}
		n.stops = append(n.stops, n.Master.Close)
		if err := ep.Register(CallTaskRun, "task-run", wire.Schema{wire.TypeString, wire.TypeUint64, wire.TypeBytes}, 0, n.serveTaskRun); err != nil {
			return fail(err)
		}
	}
	if roles[RoleCenter] {
		cc := center.DefaultConfig(cfg.Center.DataDir)
		if cfg.Center.Peer != "" {
			cc.Peer = netip.MustParseAddrPort(cfg.Center.Peer)
		}
		cc.Index = uint8(cfg.Center.Index)
		if cfg.Center.Index < 0 || cfg.Center.Index > math.MaxUint8 {
			// Out of the registry's byte: a value it refuses, not
			// a clamp (-1 became a valid center 0).
			cc.Index = math.MaxUint8
		}
		switch cfg.Center.Fsync {
		case "interval":
			cc.Fsync = center.FsyncInterval
		case "never":
			cc.Fsync = center.FsyncNever
		}
		cc.Logger = log
		if n.Center, err = center.StartCenter(ep, cc); err != nil {
			err = fileError(err, "center")
			var ce *rfc.ConfigError
			if errors.As(err, &ce) && ce.Field == "center.index" {
				ce.Value = strconv.Itoa(cfg.Center.Index) // the file's value, not the byte passed on
			}
			return fail(err)
		}
		n.stops = append(n.stops, func() { _ = n.Center.Close() })
	}
	if roles[RoleMember] {
		n.Member = route.NewMember(route.MemberConfig{Active: cfg.Member.Active})
		if err := n.Member.Register(ep); err != nil {
			return fail(err)
		}
	}
	if err := ep.Start(); err != nil {
		return fail(err)
	}
	if len(cfg.Registry.Centers) > 0 && (roles[RoleRouter] || roles[RoleDisp]) {
		var centers []netip.AddrPort
		for _, c := range cfg.Registry.Centers {
			centers = append(centers, netip.MustParseAddrPort(c))
		}
		cc := client.DefaultClientConfig(centers...)
		cc.Logger = log
		if n.Reg, err = client.NewClient(ep, cc); err != nil {
			return fail(err)
		}
	}
	if roles[RoleRouter] {
		rc := route.DefaultConfig()
		if cfg.Router.AuditDir != "" {
			rc.AuditDir = cfg.Router.AuditDir
		}
		if cfg.Router.AuditRotateBytes != 0 {
			rc.AuditRotateBytes = cfg.Router.AuditRotateBytes
		}
		if cfg.Router.ForwardTimeout.Duration != 0 {
			rc.ForwardTimeout = cfg.Router.ForwardTimeout.Duration
		}
		rc.Logger = log
		if n.Router, err = route.New(ep, rc, route.RegistryMounts{C: n.Reg}); err != nil {
			var e wire.Errno
			if errors.As(err, &e) {
				// The registry's answer (or its silence) to the
				// router's first read of the mount table.
				err = fmt.Errorf("router: mount table from registry.centers %v: %w", cfg.Registry.Centers, err)
			}
			return fail(fileError(err, "router"))
		}
		n.stops = append(n.stops, func() { _ = n.Router.Close() })
	}
	if roles[RoleDisp] {
		var store dispatch.MarkerStore
		if n.Reg != nil {
			store = dispatch.NewRegistryStore(n.Reg)
		} else {
			store = dispatch.NewMemStore(dispatch.DefaultMemStoreKeys)
		}
		dc := dispatch.DefaultConfig()
		dc.Logger = log
		dc.RemoteTargets = cfg.DispatchTargets()
		if n.Disp, err = dispatch.Start(ep, dc, store); err != nil {
			return fail(fileError(err, "dispatcher"))
		}
		n.stops = append(n.stops, func() { _ = n.Disp.Close() })
	}
	if roles[RoleAgent] {
		// The agent calls the centers at once: the endpoint must run.
		var centers []netip.AddrPort
		for _, c := range cfg.Registry.Centers {
			centers = append(centers, netip.MustParseAddrPort(c))
		}
		ac := agent.DefaultAgentConfig(cfg.Registry.ShmFile, centers...)
		if len(cfg.Registry.Prefixes) > 0 {
			ac.Prefixes = cfg.Registry.Prefixes
		}
		ac.Logger = log
		if n.Agent, err = agent.StartAgent(ep, ac); err != nil {
			return fail(err)
		}
		n.stops = append(n.stops, n.Agent.Close)
		lease := cfg.Registry.Lease.Duration
		for _, s := range cfg.Registry.Services {
			addr := s.Addr
			if addr == "" {
				addr = ep.Addr().String()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := n.Agent.Register(ctx, s.Name, addr, []byte(s.Meta), lease)
			cancel()
			if err != nil {
				return fail(fmt.Errorf("registry.services %q: %w", s.Name, err))
			}
		}
	}
	if metricsAddr != "" {
		if err := n.startMetrics(metricsAddr); err != nil {
			return fail(err)
		}
	}
	return n, nil
}

// Stop stops the node: it stops taking calls and answers those in flight
// (for at most 5 s), then stops the roles in the reverse of the order
// they started (the router flushes its audit log, the agent and the
// center their files) and closes the endpoint.
func (n *Node) Stop() {
	if n.metrics != nil {
		n.metrics.close()
	}
	if n.Ep.Started() {
		n.Ep.Drain(5 * time.Second)
	}
	for _, stop := range slices.Backward(n.stops) {
		stop()
	}
	n.Ep.Close()
}

// runTask is the worker role's task code.
func runTask(ctx context.Context, t *heartbeat.TaskInfo) ([]byte, wire.Errno) {
	switch t.Kind {
	case TaskEcho:
		return append([]byte(nil), t.Payload...), wire.OK
	case TaskSleep:
		if len(t.Payload) != 8 {
			return nil, wire.EINVAL
		}
		ms := binary.BigEndian.Uint64(t.Payload)
		if ms > 60000 {
			return nil, wire.EINVAL
		}
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for time.Now().Before(end) {
			select {
			case <-ctx.Done():
				return nil, wire.ECANCELED
			case <-time.After(10 * time.Millisecond):
			}
			t.Progress(uint64(ms-uint64(time.Until(end).Milliseconds())), ms)
		}
		return []byte("slept " + strconv.FormatUint(ms, 10) + " ms"), wire.OK
	}
	return nil, wire.EINVAL
}

// serveTaskRun runs a task on a worker for a remote client.
func (n *Node) serveTaskRun(req *rfc.Request, reply *wire.Params) wire.Errno {
	w, err := netip.ParseAddrPort(req.Param(0).Str())
	if err != nil {
		return wire.EINVAL
	}
	ctx := context.Background()
	if req.Deadline != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Deadline-n.Ep.Now()))
		defer cancel()
	}
	t, err := n.Master.Start(ctx, w, req.Param(1).Uint64(), req.Param(2).Bytes())
	if err != nil {
		return wire.AsErrno(err)
	}
	res, err := t.Wait(ctx)
	if err != nil {
		if e := wire.AsErrno(err); e != wire.EFAULT {
			return e
		}
		return wire.ETIMEDOUT
	}
	reply.Bytes(res)
	reply.Uint64(uint64(t.Incarnation()))
	return wire.OK
}

// String describes the node for its start line.
func (n *Node) String() string {
	s := fmt.Sprintf("%s node %d incarnation %d", n.Ep.Addr(), n.Ep.NodeID(), n.Ep.Incarnation())
	if n.metrics != nil {
		s += " metrics " + n.MetricsAddr().String()
	}
	return s
}
