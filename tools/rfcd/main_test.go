package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastcall/lock/proctest"
	"fastcall/node/keyfile"
	"fastcall/rfc"
	"fastcall/rfc/rfctest"
	"fastcall/wire"
)

// TestMain runs rfcd itself, with the arguments after "--", when the
// test binary is re-executed in the rfcd role.
func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func() int{"rfcd": func() int { return run(proctest.Args()) }})
}

// daemonProc is rfcd running as a child process; its log (stderr) arrives
// on Log.
type daemonProc struct {
	*proctest.Child
	addr netip.AddrPort
}

// spawnRfcd starts rfcd with args, its log to p.Log, and does not wait
// for it to serve.
func spawnRfcd(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	cmd := proctest.Command("rfcd")
	cmd.Args = append(append(cmd.Args, "--"), args...)
	cmd.Stderr = nil // to p.Log
	return &daemonProc{Child: proctest.StartCmd(t, cmd)}
}

// startRfcd spawns rfcd with args and waits for the line that says where
// it listens.
func startRfcd(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	p := spawnRfcd(t, args...)
	l, ok := p.Next("", 20*time.Second)
	f := strings.Fields(l)
	if !ok || len(f) < 3 {
		t.Fatalf("rfcd %v printed %q", args, l)
	}
	var err error
	if p.addr, err = netip.ParseAddrPort(f[2]); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeConfig writes body as rfcd.json in dir and returns its path.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "rfcd.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitLine waits for a log line holding every one of parts.
func (p *daemonProc) waitLine(t *testing.T, parts ...string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.Log:
			if !ok {
				t.Fatalf("rfcd exited before logging %v", parts)
			}
			all := true
			for _, s := range parts {
				all = all && strings.Contains(l, s)
			}
			if all {
				return l
			}
		case <-timeout:
			t.Fatalf("no log line with %v", parts)
		}
	}
}

// pingWith calls ping on addr from an endpoint that seals with key and
// also accepts accept (a reply is sealed with the callee's current key).
func pingWith(t *testing.T, key, accept []byte, addr netip.AddrPort, d time.Duration) error {
	t.Helper()
	ep := rfctest.Listen(t, 0, func(cfg *rfc.Config) {
		cfg.Key = key
		if string(accept) != string(key) {
			cfg.PrevKey = accept
		}
	})
	defer ep.Close()
	return ep.Call(rfctest.Context(t, d), addr, rfc.CallPing, nil, nil)
}

// TestKeyRotationEnds: rfcd runs with the old key; a SIGHUP starts a
// rotation (new key, old key as the previous one) and both keys are
// answered; a SIGHUP after the previous key is withdrawn — its
// configuration entry removed, its file deleted, or its file emptied —
// ends the rotation: requests sealed with the old key get no answer, and
// the log names the keys in use by id only.
func TestKeyRotationEnds(t *testing.T) {
	oldKey := []byte("old-cluster-key-0123456789abcdef")
	newKey := []byte("new-cluster-key-0123456789abcdef")
	for _, how := range []string{"config-entry-removed", "file-deleted", "file-emptied"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			keyPath := filepath.Join(dir, "cluster.key")
			prevPath := filepath.Join(dir, "prev.key")
			var cfgPath string
			writeCfg := func(withPrev bool) {
				prev := ""
				if withPrev {
					prev = fmt.Sprintf(`, "prev_key_file": %q`, prevPath)
				}
				cfgPath = writeConfig(t, dir, fmt.Sprintf(`{"addr": "127.0.0.1:0", "key_file": %q%s, "log_level": "info"}`, keyPath, prev))
			}
			if err := keyfile.Write(keyPath, oldKey); err != nil {
				t.Fatal(err)
			}
			writeCfg(false)
			p := startRfcd(t, "-config", cfgPath)
			p.waitLine(t, "keys active", "key="+keyfile.ID(oldKey), "prev=none")
			if err := pingWith(t, oldKey, oldKey, p.addr, 5*time.Second); err != nil {
				t.Fatalf("old key before the rotation: %v", err)
			}
			// Start the rotation.
			if err := keyfile.Write(prevPath, oldKey); err != nil {
				t.Fatal(err)
			}
			if err := keyfile.Write(keyPath, newKey); err != nil {
				t.Fatal(err)
			}
			writeCfg(true)
			p.Cmd.Process.Signal(syscall.SIGHUP)
			l := p.waitLine(t, "keys active", "key="+keyfile.ID(newKey), "prev="+keyfile.ID(oldKey))
			if strings.Contains(l, string(oldKey)) || strings.Contains(l, string(newKey)) {
				t.Fatalf("a key in the log: %s", l)
			}
			for _, k := range [][]byte{oldKey, newKey} {
				if err := pingWith(t, k, newKey, p.addr, 5*time.Second); err != nil {
					t.Fatalf("during the rotation, key %s: %v", keyfile.ID(k), err)
				}
			}
			// End it.
			switch how {
			case "config-entry-removed":
				writeCfg(false)
			case "file-deleted":
				if err := os.Remove(prevPath); err != nil {
					t.Fatal(err)
				}
			case "file-emptied":
				if err := os.WriteFile(prevPath, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p.Cmd.Process.Signal(syscall.SIGHUP)
			p.waitLine(t, "keys active", "key="+keyfile.ID(newKey), "prev=none")
			if err := pingWith(t, newKey, newKey, p.addr, 5*time.Second); err != nil {
				t.Fatalf("new key after the rotation: %v", err)
			}
			if err := pingWith(t, oldKey, newKey, p.addr, 500*time.Millisecond); wire.AsErrno(err) != wire.ETIMEDOUT {
				t.Fatalf("old key after the rotation ended: %v, want no answer (ETIMEDOUT)", err)
			}
		})
	}
}

// TestServiceTooLargeExits2: a registry.services entry whose addr or
// metadata the centers would refuse makes rfcd exit 2 before it starts;
// it exited 1 once a center answered EMSGSIZE.
func TestServiceTooLargeExits2(t *testing.T) {
	for _, svc := range []string{
		`{"name": "db", "addr": "` + strings.Repeat("a", 256) + `"}`,
		`{"name": "db", "meta": "` + strings.Repeat("m", 1400) + `"}`,
	} {
		path := writeConfig(t, t.TempDir(), `{"insecure": true, "addr": "127.0.0.1:0", "node": 3, "roles": ["agent"],
			"registry": {"centers": ["127.0.0.1:1"], "shm_file": "f", "services": [`+svc+`]}}`)
		if code := run([]string{"-config", path}); code != 2 {
			t.Errorf("exit %d, want 2, for %.60s...", code, svc)
		}
	}
}

// TestSignalDuringStart: a SIGHUP (a key rotation sent to every node)
// that reaches rfcd while it starts does not end it. rfcd took signals
// only once it served calls, so until then SIGHUP had its default action
// and killed the node, with nothing on stderr. Here the start is slow:
// a router whose registry does not answer waits for its mount table,
// then gives up; the SIGHUP comes in that wait.
func TestSignalDuringStart(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`{"addr": "127.0.0.1:0", "insecure": true, "log_level": "debug", "roles": ["router"],
		"registry": {"centers": [%q]}, "router": {"audit_dir": %q}}`, rfctest.FreeAddrs(t, 1)[0], filepath.Join(dir, "audit")))
	p := spawnRfcd(t, "-config", cfg)
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
