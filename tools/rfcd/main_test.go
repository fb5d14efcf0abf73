package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastcall/node/keyfile"
	"fastcall/rfc"
	"fastcall/wire"
)

// TestMain runs rfcd itself when the test binary is re-executed as it.
func TestMain(m *testing.M) {
	if os.Getenv("RFCD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// daemonProc is rfcd running as a child process.
type daemonProc struct {
	cmd   *exec.Cmd
	addr  netip.AddrPort
	lines chan string // stderr, line by line
}

func startRfcd(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RFCD_TEST_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, lines: make(chan string, 256)}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(errp)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // the test reads the lines it waits for; drop the rest
			}
		}
		close(p.lines)
	}()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("rfcd %v printed nothing", args)
	}
	f := strings.Fields(sc.Text())
	if len(f) < 3 {
		t.Fatalf("rfcd printed %q", sc.Text())
	}
	if p.addr, err = netip.ParseAddrPort(f[2]); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	return p
}

// waitLine waits for a stderr line holding every one of parts.
func (p *daemonProc) waitLine(t *testing.T, parts ...string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
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
	cfg := rfc.DefaultConfig()
	cfg.Key = key
	if string(accept) != string(key) {
		cfg.PrevKey = accept
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ep, err := rfc.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return ep.Call(ctx, addr, rfc.CallPing, nil, nil)
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
			cfgPath := filepath.Join(dir, "rfcd.json")
			writeCfg := func(withPrev bool) {
				prev := ""
				if withPrev {
					prev = fmt.Sprintf(`, "prev_key_file": %q`, prevPath)
				}
				body := fmt.Sprintf(`{"addr": "127.0.0.1:0", "key_file": %q%s, "log_level": "info"}`, keyPath, prev)
				if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
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
			p.cmd.Process.Signal(syscall.SIGHUP)
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
			p.cmd.Process.Signal(syscall.SIGHUP)
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
