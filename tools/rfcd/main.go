// Command rfcd runs a fastcall node: one rfc endpoint serving the engine's
// calls and the built-in test calls (echo, add, sleep, incr, counter,
// fault). See README.md for a tour.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"fastcall/node/builtin"
	"fastcall/node/keyfile"
	"fastcall/rfc"
)

const usage = `usage: rfcd [flags]

Runs a fastcall node on one UDP socket. It prints one line,
"rfcd: listening ADDR node N incarnation I", once it serves calls, and
stops cleanly on SIGTERM or SIGINT (exit 0). A cluster key file (mode
0600) is required unless -insecure is given; SIGHUP re-reads -key and
-prev-key to rotate keys without downtime.

flags:
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("rfcd", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	def := rfc.DefaultConfig()
	addr := fs.String("addr", def.Addr, "UDP address to listen on (host:port)")
	node := fs.Uint("node", 0, "node id carried in every datagram (0..4294967295)")
	keyFile := fs.String("key", "", "file holding the cluster key (at least 16 bytes, mode 0600); required unless -insecure")
	prevKeyFile := fs.String("prev-key", "", "file holding the previous cluster key, still accepted during a rotation")
	insecure := fs.Bool("insecure", false, "run without a cluster key: datagrams are checksummed, not authenticated")
	workers := fs.Int("workers", def.Workers, "worker goroutines running handlers")
	queue := fs.Int("queue", def.QueueLen, "requests that may wait for a worker before EBUSY")
	maxDgram := fs.Int("max-datagram", def.MaxDatagram, "datagram size limit in bytes (both ends must agree)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "rfcd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "rfcd: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	if *node > 1<<32-1 {
		fmt.Fprintln(os.Stderr, "rfcd: -node: out of range")
		return 2
	}
	cfg := def
	cfg.Addr = *addr
	cfg.NodeID = uint32(*node)
	cfg.Workers = *workers
	cfg.QueueLen = *queue
	cfg.MaxDatagram = *maxDgram
	cfg.Logger = log
	switch {
	case *keyFile == "" && !*insecure:
		fmt.Fprintln(os.Stderr, "rfcd: -key: a cluster key file is required (or -insecure to run unauthenticated)")
		return 2
	case *keyFile != "" && *insecure:
		fmt.Fprintln(os.Stderr, "rfcd: -key and -insecure exclude each other")
		return 2
	case *keyFile != "":
		key, err := keyfile.Read(*keyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rfcd: -key: %v\n", err)
			return 2
		}
		cfg.Key = key
		if *prevKeyFile != "" {
			if cfg.PrevKey, err = keyfile.Read(*prevKeyFile); err != nil {
				fmt.Fprintf(os.Stderr, "rfcd: -prev-key: %v\n", err)
				return 2
			}
		}
	default:
		log.Warn("running without a cluster key: datagrams are not authenticated; anyone who can reach this port can call it")
	}
	ep, err := rfc.Open(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rfcd: %v\n", err)
		if _, ok := err.(*rfc.ConfigError); ok {
			return 2
		}
		return 1
	}
	if _, err := builtin.Register(ep); err != nil {
		fmt.Fprintf(os.Stderr, "rfcd: %v\n", err)
		ep.Close()
		return 1
	}
	// Every call is registered before the first request is read.
	if err := ep.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rfcd: %v\n", err)
		ep.Close()
		return 1
	}
	fmt.Printf("rfcd: listening %s node %d incarnation %d\n", ep.Addr(), ep.NodeID(), ep.Incarnation())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for s := range sig {
		if s == syscall.SIGHUP {
			// Key rotation: re-read -key and -prev-key.
			if *keyFile == "" {
				continue
			}
			key, err := keyfile.Read(*keyFile)
			var prev []byte
			if err == nil && *prevKeyFile != "" {
				prev, err = keyfile.Read(*prevKeyFile)
			}
			if err == nil {
				err = ep.SetKeys(key, prev)
			}
			if err != nil {
				log.Error("key reload failed; keeping the current keys", "err", err)
			}
			continue
		}
		log.Info("rfcd stopping", "signal", s.String())
		break
	}
	ep.Close()
	return 0
}
