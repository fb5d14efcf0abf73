package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"fastcall/node/registry/agent"
	"fastcall/node/registry/center"
	"fastcall/node/registry/client"
	"fastcall/node/registry/registrytest"
	"fastcall/node/registry/sdk"
	"fastcall/rfc"
	"fastcall/shm"
)

// The regscale case: the registry's pushes to many subscribed agents,
// every agent a real endpoint on loopback. The two centers run in a child
// process (this binary re-executed), so that their CPU time is the
// child's alone; the agents and the registering node run in this one.

// RegScaleCounts are the agent counts measured.
var RegScaleCounts = []int{50, 200}

const (
	regScaleWarm    = 5                     // registrations not measured
	regScaleSamples = 50                    // registrations measured per count
	regScaleGap     = 20 * time.Millisecond // between two registrations
	regScaleBound   = 10 * time.Second      // one registration's wait for every map
	regScalePoll    = 20 * time.Microsecond // the maps are read this often
	regScaleNode    = 70                    // the registering node's id

	childRegCenters = "regscale-centers" // the child job: two centers
)

// RegScalePoint is one agent count: the time from the start of Register
// until every agent's map holds the instance (P50, P99, Max over the
// registrations) and until one agent's map does (EachP50, EachP99 over
// every agent of every registration); the centers' CPU (the child
// process's user + system time, in cores) while registering and while
// idle (keepalives only) for as long, and the CPU per registration above
// idle.
type RegScalePoint struct {
	Agents, Samples  int
	P50, P99, Max    time.Duration
	EachP50, EachP99 time.Duration
	AckP50, AckP99   time.Duration // until Register returns, acknowledged
	CentersCores     float64       // during the registrations
	IdleCores        float64       // the same length of time with no registration
	CPUPerReg        time.Duration
	ThisCores        float64 // this process (agents, registering node, polling) during the registrations
	// Over the measured registrations: the datagrams both centers sent
	// and received (keepalives included), their pushes that failed, and
	// the datagrams the kernel dropped at the centers' sockets and at
	// the agents' (receive buffer full).
	CenterTx, CenterRx, PushFailures uint64
	CenterDrops, AgentDrops          uint64
	Load                             string // /proc/loadavg at the end
}

// regCentersChild is the child process running the two centers.
type regCentersChild struct{ *serverChild }

// startRegCenters starts the child and reads the centers' addresses.
func startRegCenters() (regCentersChild, error) {
	c, err := startServerChild(childRegCenters, 2)
	return regCentersChild{c}, err
}

// regCentersSnap is what the child reports when asked: its CPU time so
// far, and the sums over both centers of the datagrams sent and
// received, the acknowledged pushes and the failed ones.
type regCentersSnap struct {
	cpu                          time.Duration
	tx, rx, pushes, pushFailures uint64
}

// snap asks the child for its figures so far.
func (c regCentersChild) snap() (regCentersSnap, error) {
	var s regCentersSnap
	if _, err := io.WriteString(c.in, "snap\n"); err != nil {
		return s, err
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return s, err
	}
	var ns int64
	if _, err := fmt.Sscan(line, &ns, &s.tx, &s.rx, &s.pushes, &s.pushFailures); err != nil {
		return s, fmt.Errorf("regscale centers said %q: %v", line, err)
	}
	s.cpu = time.Duration(ns)
	return s, nil
}

// regCentersChildMain is the child: two centers (default configuration,
// data in a temporary directory) on loopback; it prints its ready line
// with both centers' addresses, answers each "snap" line on its standard input with its CPU
// time in nanoseconds and the counters of regCentersSnap, and stops when
// its standard input ends.
func regCentersChildMain() {
	dir, err := os.MkdirTemp("", "fcbench-regscale")
	if err != nil {
		childFail(err)
	}
	defer os.RemoveAll(dir)
	var rs registrySetup
	defer rs.close()
	cs, err := rs.startCenters(dir, center.FsyncAlways)
	if err != nil {
		childFail(err)
	}
	printReady(rs.addrs()...)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "snap" {
			continue
		}
		var s regCentersSnap
		for i, c := range cs {
			es, cst := rs.eps[i].Stats(), c.Stats()
			s.tx += es.Tx
			s.rx += es.Rx
			s.pushes += cst.Pushes
			s.pushFailures += cst.PushFailures
		}
		fmt.Println(int64(cpuOfProcess()), s.tx, s.rx, s.pushes, s.pushFailures)
	}
}

// regScaleAgents are n agents on their own endpoints, each bound to its
// own loopback address (127.1.x.y) as the nodes of a cluster have their
// own, with a map file of the smallest size.
type regScaleAgents struct {
	eps []*rfc.Endpoint
	ags []*agent.Agent
	dir string
}

func (s *regScaleAgents) close() {
	closeAll(s.eps)
	for _, a := range s.ags {
		a.Close()
	}
	os.RemoveAll(s.dir)
}

func startRegScaleAgents(n int, centers []netip.AddrPort) (*regScaleAgents, error) {
	s := &regScaleAgents{}
	var err error
	if s.dir, err = os.MkdirTemp("", "fcbench-regscale-agents"); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		cfg := lightConfig(uint32(1000+i), 64, 64, 256)
		cfg.Addr = fmt.Sprintf("127.1.%d.%d:0", i/250, i%250+1)
		ep, err := rfc.Listen(cfg)
		if err != nil {
			s.close()
			return nil, err
		}
		s.eps = append(s.eps, ep)
		ac := agent.DefaultAgentConfig(filepath.Join(s.dir, "agent"+itoa(i)+".map"), centers...)
		ac.ShmSize = shm.MinSize
		ac.Logger = quiet()
		a, err := agent.StartAgent(ep, ac)
		if err != nil {
			s.close()
			return nil, err
		}
		s.ags = append(s.ags, a)
	}
	if synced := registrytest.AwaitSynced(s.ags, time.Now().Add(30*time.Second)); synced != n {
		s.close()
		return nil, fmt.Errorf("regscale: %d of %d agents synced after 30s", synced, n)
	}
	return s, nil
}

// RunRegScale measures, for each agent count, registrations one after
// another (alternately first at either center) until every agent's map
// holds each, and the centers' CPU.
func RunRegScale(o Options, progress func(string)) ([]RegScalePoint, error) {
	raiseFileLimit(uint64(4*RegScaleCounts[len(RegScaleCounts)-1] + 256))
	return measureCounts(RegScaleCounts, measureRegScale, progress, func(n int, p RegScalePoint) string {
		return fmt.Sprintf("regscale %d agents: every map p50 %v p99 %v max %v; centers %.3f cores (idle %.3f)",
			n, p.P50, p.P99, p.Max, p.CentersCores, p.IdleCores)
	})
}

func measureRegScale(n int) (RegScalePoint, error) {
	p := RegScalePoint{Agents: n, Samples: regScaleSamples}
	cc, err := startRegCenters()
	if err != nil {
		return p, err
	}
	defer cc.stop()
	s, err := startRegScaleAgents(n, cc.addrs)
	if err != nil {
		return p, err
	}
	defer s.close()
	ep, err := newEndpoint(regScaleNode)
	if err != nil {
		return p, err
	}
	defer ep.Close()
	var cls [2]*client.Client
	for i := range cls {
		cfg := client.DefaultClientConfig(cc.addrs[i], cc.addrs[1-i])
		if cls[i], err = client.NewClient(ep, cfg); err != nil {
			return p, err
		}
	}
	var all, each, acks []time.Duration
	var snap0 regCentersSnap
	var thisStart time.Duration
	var wallStart time.Time
	var drops0 [2]uint64
	isCenter := func(a netip.AddrPort) bool { return a == cc.addrs[0] || a == cc.addrs[1] }
	isAgent := func(a netip.AddrPort) bool { b := a.Addr().As4(); return b[0] == 127 && b[1] == 1 }
	for k := 0; k < regScaleWarm+regScaleSamples; k++ {
		if k == regScaleWarm {
			if snap0, err = cc.snap(); err != nil {
				return p, err
			}
			drops0 = [2]uint64{udpDrops(isCenter), udpDrops(isAgent)}
			thisStart, wallStart = cpuOfProcess(), time.Now()
		}
		name := "regscale-" + itoa(k)
		key := []byte(sdk.ServiceKey(name, regScaleNode))
		done := make(chan error, 1)
		var acked time.Duration
		start := time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), regScaleBound)
			defer cancel()
			_, err := cls[k%2].Register(ctx, name, "127.0.0.1:1", nil, time.Minute)
			acked = time.Since(start)
			done <- err
		}()
		left := registrytest.AwaitKey(s.ags, key, regScalePoll, start.Add(regScaleBound), func(int) {
			if k >= regScaleWarm {
				each = append(each, time.Since(start))
			}
		})
		if len(left) > 0 {
			err := <-done
			ws := s.ags[left[0]].Watch().Stats()
			return p, fmt.Errorf("regscale: %s not in %d of %d maps after %v (Register: %v; the first such agent's watch: %+v)",
				key, len(left), n, regScaleBound, err, ws)
		}
		if k >= regScaleWarm {
			all = append(all, time.Since(start))
		}
		if err := <-done; err != nil {
			return p, fmt.Errorf("regscale: Register: %v", err)
		}
		if k >= regScaleWarm {
			acks = append(acks, acked)
		}
		time.Sleep(regScaleGap)
	}
	snap1, err := cc.snap()
	if err != nil {
		return p, err
	}
	p.CenterDrops, p.AgentDrops = udpDrops(isCenter)-drops0[0], udpDrops(isAgent)-drops0[1]
	p.CenterTx, p.CenterRx = snap1.tx-snap0.tx, snap1.rx-snap0.rx
	p.PushFailures = snap1.pushFailures - snap0.pushFailures
	thisEnd, wall := cpuOfProcess(), time.Since(wallStart)
	// The same length of time with no registration: the agents'
	// keepalives alone.
	time.Sleep(wall)
	snap2, err := cc.snap()
	if err != nil {
		return p, err
	}
	slices.Sort(all)
	slices.Sort(each)
	slices.Sort(acks)
	ack := Sample{Latencies: acks}
	p.AckP50, p.AckP99 = ack.Percentile(0.5), ack.Percentile(0.99)
	smp, one := Sample{Latencies: all}, Sample{Latencies: each}
	p.P50, p.P99, p.Max = smp.Percentile(0.5), smp.Percentile(0.99), all[len(all)-1]
	p.EachP50, p.EachP99 = one.Percentile(0.5), one.Percentile(0.99)
	busy, idle := snap1.cpu-snap0.cpu, snap2.cpu-snap1.cpu
	p.CentersCores = float64(busy) / float64(wall)
	p.IdleCores = float64(idle) / float64(wall)
	p.CPUPerReg = max(busy-idle, 0) / time.Duration(regScaleSamples)
	p.ThisCores = float64(thisEnd-thisStart) / float64(wall)
	p.Load = loadAverage()
	return p, nil
}

// WriteRegScaleMarkdown writes one row per agent count.
func WriteRegScaleMarkdown(w io.Writer, ps []RegScalePoint) {
	var rows [][]string
	for _, p := range ps {
		rows = append(rows, []string{itoa(p.Agents), itoa(p.Samples), ms(p.P50), ms(p.P99), ms(p.Max), ms(p.EachP50), ms(p.EachP99), ms(p.AckP50), ms(p.AckP99),
			fmt.Sprintf("%.3f", p.CentersCores), fmt.Sprintf("%.3f", p.IdleCores), ms(p.CPUPerReg), fmt.Sprintf("%.3f", p.ThisCores),
			fmt.Sprintf("%d / %d", p.CenterTx, p.CenterRx), fmt.Sprint(p.PushFailures), fmt.Sprintf("%d / %d", p.CenterDrops, p.AgentDrops), p.Load})
	}
	WriteTable(w, []string{"agents", "registrations", "every map p50 ms", "every map p99 ms", "every map max ms", "one map p50 ms", "one map p99 ms", "acknowledged p50 ms", "acknowledged p99 ms",
		"centers CPU, cores", "centers CPU idle, cores", "centers CPU ms per registration", "agents' process CPU, cores",
		"centers' datagrams sent / received", "push failures", "kernel drops at centers / agents", "load average"}, rows)
}
