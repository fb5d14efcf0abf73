package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/rfc/rfctest"
)

// TestSignalDuringStart: a SIGHUP (a key rotation sent to every node)
// that reaches rfcd while it starts does not end it. rfcd took signals
// only once it served calls, so until then SIGHUP had its default action
// and killed the node, with nothing on stderr. Here the start is slow:
// a router whose registry does not answer waits for its mount table,
// then gives up; the SIGHUP comes in that wait.
func TestSignalDuringStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rfcd.json")
	body := fmt.Sprintf(`{"addr": "127.0.0.1:0", "insecure": true, "log_level": "debug", "roles": ["router"],
		"registry": {"centers": [%q]}, "router": {"audit_dir": %q}}`, rfctest.FreeAddrs(t, 1)[0], filepath.Join(dir, "audit"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := proctest.Command("rfcd")
	cmd.Args = append(cmd.Args, "--", "-config", cfg)
	cmd.Stderr = nil // to p.Log
	p := &daemonProc{Child: proctest.StartCmd(t, cmd)}
	// The engine is up (its debug line is logged during the start): the
	// router's wait for its table comes next.
	p.waitLine(t, "rfc endpoint up")
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var said []string
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for l := range p.Log {
			said = append(said, l)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		p.Kill()
		t.Fatal("rfcd neither started nor ended within 60 s")
	}
	<-logged
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("rfcd killed by %v during its start", ws.Signal())
		}
	}
	if err == nil || !strings.Contains(strings.Join(said, "\n"), "registry.centers") {
		t.Fatalf("rfcd ended with %v, said %q; want the router's refusal naming registry.centers", err, said)
	}
}
