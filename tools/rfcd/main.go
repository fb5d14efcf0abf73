// Command rfcd runs a fastcall node: one rfc endpoint serving the engine's
// calls, the built-in test calls, and the services of the roles its
// configuration gives it. See docs/RFCD.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"fastcall/node/daemon"
	"fastcall/node/keyfile"
	"fastcall/rfc"
)

const usage = `usage: rfcd [-config FILE] [flags]

Runs a fastcall node on one UDP socket. Configuration comes from a JSON
file (-config; see docs/RFCD.md and docs/rfcd.example.json), then from the
flags below, which override it. Fields of the file:

  node              node id carried in every datagram (0..4294967295)
  addr              UDP listen address "IP:PORT" (default 127.0.0.1:7000)
  key_file          cluster key file, mode 0600 (required unless insecure)
  prev_key_file     previous key, still accepted during a rotation
  insecure          true: run without a key (checksummed, not authenticated)
  log_level         debug, info, warn, error (default info)
  roles             list of: worker, master, center, agent, router, member, dispatcher
  engine.workers          handler goroutines (default 4)
  engine.queue            requests waiting for a worker before EBUSY (default 1024)
  engine.max_datagram     datagram size limit in bytes; all nodes agree (default 1400)
  engine.max_pending      calls in flight from this node (default 4096)
  engine.default_timeout  deadline of calls made without one (default "2s")
  engine.max_age          replay bound on request stamps (default "30s")
  heartbeat.members       ["IP:PORT", ...] the other nodes to watch
  heartbeat.interval      probe period (default "200ms")
  center.data_dir         center role: log and snapshot directory
  center.peer             center role: the other center "IP:PORT" (also listed
                          in heartbeat.members: only the heartbeat finds it dead)
  center.index            center role: 0 or 1 (0 wins simultaneous writes)
  center.fsync            center role: always (default), interval, never
  registry.centers        agent role: one or two centers "IP:PORT"
  registry.shm_file       agent role: the node's shared-memory map file
  registry.prefixes       agent role: prefixes mirrored into the map (default ["svc/"])
  registry.services       agent role: [{"name", "addr", "meta"}] registrations kept alive
  registry.lease          agent role: their lease (default "10s"; 1s to 10m)
                          (router and dispatcher roles use registry.centers too)
  router.audit_dir        router role: audit files, mode 0600 (default "audit")
  router.audit_rotate_bytes  router role: audit file rotation size (default 64 MiB)
  router.forward_timeout  router role: one forwarding attempt (default "500ms")
  member.active           member role: start as the sub-cluster's active member
  metrics_addr            Prometheus text format at http://ADDR/metrics: PORT or :PORT
                          (loopback), or IP:PORT; empty (default): off
  dispatcher.targets      dispatcher role: the only "IP:PORT" a remote submit may
                          name (default: heartbeat.members; neither: all refused)

rfcd prints one line, "rfcd: listening ADDR node N incarnation I" (then
" metrics MADDR" with metrics_addr), once it serves calls. SIGTERM or SIGINT: stop taking calls, answer those in
flight, exit 0. SIGHUP: re-read the configuration file's key_file and
prev_key_file (the -key and -prev-key flags still override them) and the
key files (key rotation without downtime). A prev_key_file that is unset,
missing or empty ends a rotation: the previous key is no longer accepted.
The log line "keys active" names the keys in use by id (the first bytes
of their SHA-256), never the keys. An invalid configuration names the
field and exits 2.

flags:
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("rfcd", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	cfgFile := fs.String("config", "", "JSON configuration file")
	addr := fs.String("addr", "", "UDP address to listen on (host:port)")
	node := fs.Uint("node", 0, "node id")
	keyFile := fs.String("key", "", "cluster key file (mode 0600)")
	prevKeyFile := fs.String("prev-key", "", "previous cluster key file, accepted during a rotation")
	insecure := fs.Bool("insecure", false, "run without a cluster key")
	level := fs.String("log-level", "", "log level: debug, info, warn, error")
	roles := fs.String("roles", "", "comma-separated roles: worker, master, center, agent, router, member, dispatcher")
	members := fs.String("members", "", "comma-separated heartbeat members IP:PORT")
	interval := fs.Duration("hb-interval", 0, "heartbeat probe interval")
	workers := fs.Int("workers", 0, "engine worker goroutines")
	queue := fs.Int("queue", 0, "engine queue length")
	maxDgram := fs.Int("max-datagram", 0, "datagram size limit in bytes")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics over HTTP at PORT, :PORT (both loopback) or IP:PORT; empty: off")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "rfcd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg := daemon.Default()
	if *cfgFile != "" {
		if err := daemon.LoadFile(*cfgFile, &cfg); err != nil {
			fmt.Fprintf(os.Stderr, "rfcd: %s: %v\n", *cfgFile, err)
			return 2
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["addr"] {
		cfg.Addr = *addr
	}
	if set["node"] {
		if *node > 1<<32-1 {
			fmt.Fprintln(os.Stderr, "rfcd: -node: out of range")
			return 2
		}
		cfg.Node = uint32(*node)
	}
	if set["key"] {
		cfg.KeyFile = *keyFile
	}
	if set["prev-key"] {
		cfg.PrevKeyFile = *prevKeyFile
	}
	if set["insecure"] {
		cfg.Insecure = *insecure
	}
	if set["log-level"] {
		cfg.LogLevel = *level
	}
	if set["roles"] {
		cfg.Roles = splitList(*roles)
	}
	if set["members"] {
		cfg.Heartbeat.Members = splitList(*members)
	}
	if set["hb-interval"] {
		cfg.Heartbeat.Interval = daemon.Duration{Duration: *interval}
	}
	if set["workers"] {
		cfg.Engine.Workers = *workers
	}
	if set["queue"] {
		cfg.Engine.Queue = *queue
	}
	if set["max-datagram"] {
		cfg.Engine.MaxDatagram = *maxDgram
	}
	if set["metrics-addr"] {
		cfg.MetricsAddr = *metricsAddr
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "rfcd: %v\n", err)
		return 2
	}
	var lv slog.Level
	lv.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	// SIGHUP is taken before the start, which may last seconds (a
	// center's recovery, a router's first table, the agent's
	// registrations): until Notify its default action ends the process,
	// and a key rotation sent to every node would kill one starting.
	// One that comes during the start reloads the keys after it.
	// SIGTERM and SIGINT keep their default action until the node
	// serves: they end a start at once.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	n, err := daemon.Start(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rfcd: %v\n", err)
		var ce *rfc.ConfigError
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	fmt.Printf("rfcd: listening %s\n", n)
	ks := keySource{cfgFile: *cfgFile, keySet: set["key"], key: *keyFile, prevSet: set["prev-key"], prev: *prevKeyFile}
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s == syscall.SIGHUP {
			reloadKeys(n, ks, cfg, log)
			continue
		}
		log.Info("rfcd stopping", "signal", s.String())
		break
	}
	start := time.Now()
	n.Stop()
	log.Info("rfcd stopped", "took", time.Since(start).String())
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// keySource is where a SIGHUP finds the key file paths: the
// configuration file, read again, with the -key and -prev-key flags over
// it when they were given.
type keySource struct {
	cfgFile string
	keySet  bool
	key     string
	prevSet bool
	prev    string
}

// keyPaths are the key file paths in force.
type keyPaths struct {
	key, prev string
}

// paths returns the key file paths a reload applies. Without a
// configuration file, or if it no longer loads, the paths are those of
// fallback (the configuration rfcd started with) under the flags.
func (ks keySource) paths(fallback daemon.Config) (keyPaths, error) {
	kp := keyPaths{fallback.KeyFile, fallback.PrevKeyFile}
	var err error
	if ks.cfgFile != "" {
		c := daemon.Default()
		if err = daemon.LoadFile(ks.cfgFile, &c); err == nil {
			kp = keyPaths{c.KeyFile, c.PrevKeyFile}
		}
	}
	if ks.keySet {
		kp.key = ks.key
	}
	if ks.prevSet {
		kp.prev = ks.prev
	}
	return kp, err
}

// read reads the keys (keyfile.ReadPrev: a previous key file that is
// not set, does not exist or is empty means the rotation has ended).
func (kp keyPaths) read() (key, prev []byte, err error) {
	if kp.key == "" {
		return nil, nil, errors.New("key_file is not set")
	}
	if key, err = keyfile.Read(kp.key); err != nil {
		return nil, nil, err
	}
	if prev, err = keyfile.ReadPrev(kp.prev); err != nil {
		return nil, nil, err
	}
	return key, prev, nil
}

// reloadKeys applies the keys a SIGHUP finds (keySource, keyPaths.read).
// On any error the keys in use stay as they are.
func reloadKeys(n *daemon.Node, ks keySource, started daemon.Config, log *slog.Logger) {
	if started.KeyFile == "" {
		log.Warn("SIGHUP ignored: no key file")
		return
	}
	kp, err := ks.paths(started)
	if err != nil {
		log.Error("key reload failed; keeping the current keys", "config", ks.cfgFile, "err", err)
		return
	}
	key, prev, err := kp.read()
	if err == nil {
		err = n.Ep.SetKeys(key, prev)
	}
	if err != nil {
		log.Error("key reload failed; keeping the current keys", "err", err)
		return
	}
	log.Info("keys active", "key", keyfile.ID(key), "prev", keyfile.ID(prev))
}
