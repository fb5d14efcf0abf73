package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"fastcall/node/registry/agent"
	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/registry/registrytest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
)

// propagationSamples is how many registrations the propagation
// measurement times per fsync policy.
const propagationSamples = 200

const (
	propagationPoll  = 10 * time.Microsecond // the map is read this often while a registration runs
	propagationBound = 5 * time.Second       // one registration's wait for the map
)

// registrySetup is what a registry case opened: two centers
// (startCenters), and in the registry case an agent writing a map and
// three nodes that registered instances of service "bench".
type registrySetup struct {
	eps    []*rfc.Endpoint
	agent  *agent.Agent
	reader *sdk.Reader
	undo
}

func (s *registrySetup) addrs() []netip.AddrPort {
	return []netip.AddrPort{s.eps[0].Addr(), s.eps[1].Addr()}
}

func (s *registrySetup) newEP(node uint32) (*rfc.Endpoint, error) {
	ep, err := newEndpoint(node)
	if err == nil {
		s.eps = append(s.eps, ep)
		s.add(func() { ep.Close() })
	}
	return ep, err
}

func (s *registrySetup) client(node uint32) (*client.Client, error) {
	ep, err := s.newEP(node)
	if err != nil {
		return nil, err
	}
	cfg := client.DefaultClientConfig(s.addrs()...)
	cfg.AttemptTimeout = 200 * time.Millisecond
	return client.NewClient(ep, cfg)
}

// startCenters starts the two centers of a registry, peers of each other,
// on the set-up's first two endpoints (nodes 100 and 101, made here),
// each with its data in its own directory under dir and the given fsync
// policy. They are closed with the set-up.
func (s *registrySetup) startCenters(dir string, policy center.FsyncPolicy) ([]*center.Center, error) {
	for i := 0; i < 2; i++ {
		if _, err := s.newEP(uint32(100 + i)); err != nil {
			return nil, err
		}
	}
	var cs []*center.Center
	for i := 0; i < 2; i++ {
		cfg := center.DefaultConfig(filepath.Join(dir, "center"+itoa(i)))
		cfg.Index = uint8(i)
		cfg.Peer = s.eps[1-i].Addr()
		cfg.Logger = quiet()
		cfg.Fsync = policy
		c, err := center.StartCenter(s.eps[i], cfg)
		if err != nil {
			return nil, err
		}
		s.add(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs, nil
}

func startRegistry(policy center.FsyncPolicy) (_ *registrySetup, err error) {
	s := &registrySetup{}
	defer s.closeOnError(&err)
	dir, err := os.MkdirTemp("", "fcbench-registry")
	if err != nil {
		return nil, err
	}
	s.add(func() { os.RemoveAll(dir) })
	if _, err := s.startCenters(dir, policy); err != nil {
		return nil, err
	}
	ep, err := s.newEP(50)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "bench.map")
	acfg := agent.DefaultAgentConfig(path, s.addrs()...)
	acfg.Logger = quiet()
	if s.agent, err = agent.StartAgent(ep, acfg); err != nil {
		return nil, err
	}
	s.add(func() { s.agent.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		c, err := s.client(uint32(60 + i))
		if err != nil {
			return nil, err
		}
		if _, err := c.Register(ctx, "bench", fmt.Sprintf("127.0.0.1:%d", 9000+i), []byte("zone=a"), time.Minute); err != nil {
			return nil, fmt.Errorf("registry: Register: %v", err)
		}
	}
	if s.reader, err = sdk.Open(path); err != nil {
		return nil, err
	}
	s.add(func() { s.reader.Close() })
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if in, _ := s.reader.LookupDirect("bench", nil); len(in) == 3 {
			break
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("registry: instances not in the map")
		}
	}
	return s, nil
}

// Propagation is the time from the start of a Register call until the
// instance is visible to an SDK reader of a subscribed node's map
// (P50, P99, Max), and until the call returns, acknowledged by both
// centers (AckP50, AckP99). The map is polled while the call runs.
type Propagation struct {
	Policy         string
	Samples        int
	P50, P99       time.Duration
	Max            time.Duration
	AckP50, AckP99 time.Duration
}

// RegistryResult is the registry case.
type RegistryResult struct {
	Lookups     []OpResult
	Propagation []Propagation
}

// RunRegistry measures service lookups of 3 instances through the shm SDK
// against lookup calls to a center, and push propagation latency with
// each fsync policy.
func RunRegistry(o Options, progress func(string)) (RegistryResult, error) {
	var res RegistryResult
	s, err := startRegistry(center.FsyncAlways)
	if err != nil {
		return res, err
	}
	c := s.agent.Client()
	ctx := context.Background()
	buf := make([]sdk.Instance, 0, 8)
	rs, err := runOpGroup("lookup of a service with 3 instances, 1 goroutine", o, []opSystem{
		{name: "shm SDK Lookup (sequence-validated cache)", base: true, g: 1, op: func(_, _ int) {
			if in, err := s.reader.Lookup("bench"); err != nil || len(in) != 3 {
				panic("sdk Lookup failed")
			}
		}},
		{name: "shm SDK LookupDirect (reads the map every time)", g: 1, op: func(_, _ int) {
			if in, err := s.reader.LookupDirect("bench", buf[:0]); err != nil || len(in) != 3 {
				panic("sdk LookupDirect failed")
			}
		}},
		{name: "Lookup call to a center (loopback)", g: 1, op: func(_, _ int) {
			if in, err := c.Lookup(ctx, "bench"); err != nil || len(in) != 3 {
				panic("center Lookup failed")
			}
		}},
	}, progress)
	s.close()
	if err != nil {
		return res, err
	}
	res.Lookups = rs
	for _, policy := range []center.FsyncPolicy{center.FsyncAlways, center.FsyncInterval} {
		p, err := measurePropagation(policy)
		if err != nil {
			return res, err
		}
		if progress != nil {
			progress(fmt.Sprintf("propagation %s: p50 %v p99 %v", p.Policy, p.P50, p.P99))
		}
		res.Propagation = append(res.Propagation, p)
	}
	return res, nil
}

func measurePropagation(policy center.FsyncPolicy) (Propagation, error) {
	p := Propagation{Policy: policy.String(), Samples: propagationSamples}
	s, err := startRegistry(policy)
	if err != nil {
		return p, err
	}
	defer s.close()
	reg, err := s.client(70)
	if err != nil {
		return p, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lat := make([]time.Duration, 0, propagationSamples)
	acks := make([]time.Duration, 0, propagationSamples)
	for i := 0; i < propagationSamples+10; i++ {
		name := "prop-" + itoa(i)
		inMap := func() bool { _, err := s.reader.Lookup(name); return err == nil }
		vis, acked, err := registrytest.TimeRegistration(ctx, reg, name, inMap, propagationPoll, propagationBound)
		if err != nil {
			return p, fmt.Errorf("propagation: %v", err)
		}
		if i >= 10 { // the first ones warm up
			lat = append(lat, vis)
			acks = append(acks, acked)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	smp := Sample{Latencies: lat}
	p.P50, p.P99, p.Max = smp.Percentile(0.5), smp.Percentile(0.99), lat[len(lat)-1]
	acked := Sample{Latencies: acks}
	p.AckP50, p.AckP99 = acked.Percentile(0.5), acked.Percentile(0.99)
	return p, nil
}

// WriteRegistryMarkdown writes the lookup and propagation tables.
func WriteRegistryMarkdown(w io.Writer, r RegistryResult) {
	WriteOpsMarkdown(w, r.Lookups, "SDK Lookup")
	fmt.Fprintln(w)
	var rows [][]string
	for _, p := range r.Propagation {
		rows = append(rows, []string{p.Policy, itoa(p.Samples), ms(p.P50), ms(p.P99), ms(p.Max), ms(p.AckP50), ms(p.AckP99)})
	}
	fmt.Fprintln(w, "Push propagation: from the start of a Register call until the instance is visible through the SDK in a subscribed node's map (polled while the call runs), and until the call returns, acknowledged once the record is on disk at both centers under fsync-always; one registration at a time. A center pushes a change while its fsync runs; a change lost in a crash before the fsync is withdrawn from subscribers when they resynchronize (docs/REGISTRY.md).")
	fmt.Fprintln(w)
	WriteTable(w, []string{"center fsync policy", "samples", "visible p50 ms", "visible p99 ms", "visible max ms", "acknowledged p50 ms", "acknowledged p99 ms"}, rows)
}
