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
	"fastcall/rfc"
)

const usage = `usage: rfcd [flags]

Runs a fastcall node on one UDP socket. It prints one line,
"rfcd: listening ADDR node N incarnation I", once it serves calls, and
stops cleanly on SIGTERM or SIGINT (exit 0).

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
	keyFile := fs.String("key", "", "file holding the cluster key (at least 16 bytes); empty: checksum mode")
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
	if *keyFile != "" {
		key, err := os.ReadFile(*keyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rfcd: -key: %v\n", err)
			return 2
		}
		cfg.Key = key
	}
	ep, err := rfc.Listen(cfg)
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
	fmt.Printf("rfcd: listening %s node %d incarnation %d\n", ep.Addr(), ep.NodeID(), ep.Incarnation())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Info("rfcd stopping", "signal", s.String())
	ep.Close()
	return 0
}
