// Package proctest runs a test binary again as a child process in a named
// role, for the tests of what only separate processes show: a SIGKILL in
// the middle of a write, a lock holder that dies, a peer whose heartbeat
// stops, a mapping shared across processes.
//
// A package's TestMain calls Main with its roles; a test calls Command or
// Start to re-execute the binary in one of them. The child learns its role
// and parameters from its environment and reports on stdout, one line per
// fact; Start gives the parent those lines on a channel. A child started by
// Start ends itself when the parent closes its stdin or exits (ParentGone),
// and the parent kills and reaps it when the test ends, so no child
// outlives its test.
//
// The package sits under lock, the lowest layer, so that the tests of every
// package import it downward; it imports only the standard library.
// docs/TESTING.md ("Shared test helpers") describes it.
package proctest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RoleEnv names the environment variable that carries a child's role.
const RoleEnv = "FASTCALL_TEST_ROLE"

// LineBuffer bounds the stdout lines a Child holds unread; further lines
// are dropped until the parent reads.
const LineBuffer = 4096

// Main is the body of a TestMain: RunRole, then, in the parent, the
// tests.
func Main(m *testing.M, roles map[string]func() int) {
	RunRole(roles)
	os.Exit(m.Run())
}

// RunRole, in a child, runs the function of the role named by RoleEnv
// and exits with its status (3 for a role not in roles); in the parent it
// returns at once. A TestMain that prepares more than Main does calls
// RunRole first.
func RunRole(roles map[string]func() int) {
	role := os.Getenv(RoleEnv)
	if role == "" {
		return
	}
	run, ok := roles[role]
	if !ok {
		os.Exit(3)
	}
	os.Exit(run())
}

// Command returns a command that runs the test binary in role, with env
// (KEY=VALUE) added to the parent's environment; the child runs no test.
// Its stderr is the parent's. A child built with the race detector skips
// the detector's pause at exit unless GORACE is set: children report
// through their output and exit status, not through a race report's
// timing.
func Command(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), RoleEnv+"="+role)
	if os.Getenv("GORACE") == "" {
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// Args returns, in a child, the arguments after the first "--" on its
// command line: a parent that passes a child a command line of its own
// appends "--" and the arguments to the Args of Command.
func Args() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

// Child is a running child started by Start or StartCmd.
type Child struct {
	Cmd *exec.Cmd
	// Lines carries the child's stdout, one line each, and is closed when
	// stdout ends. At most LineBuffer lines wait unread.
	Lines chan string
	// Log carries the child's stderr the same way when StartCmd found
	// cmd.Stderr nil; it is nil otherwise.
	Log chan string

	stdin   io.WriteCloser
	readers sync.WaitGroup // the readLines goroutines
	once    sync.Once
	err     error
}

// Start runs Command(role, env...) with its stdin and stdout piped. The
// child is killed (continued first, in case a test stopped it) and reaped
// when the test ends.
func Start(t testing.TB, role string, env ...string) *Child {
	t.Helper()
	return StartCmd(t, Command(role, env...))
}

// StartCmd is Start for a command from Command that the caller changed
// (more arguments, another environment), or for another program (the
// campaign's rfcd). With cmd.Stderr set to nil, the child's stderr is read
// into Log.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Child {
	t.Helper()
	c := &Child{Cmd: cmd, Lines: make(chan string, LineBuffer)}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr io.Reader
	if cmd.Stderr == nil {
		if stderr, err = cmd.StderrPipe(); err != nil {
			t.Fatal(err)
		}
		c.Log = make(chan string, LineBuffer)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	c.stdin = stdin
	t.Cleanup(func() {
		c.stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = c.Kill()
	})
	c.readers.Add(1)
	go func() { defer c.readers.Done(); readLines(stdout, c.Lines) }()
	if stderr != nil {
		c.readers.Add(1)
		go func() { defer c.readers.Done(); readLines(stderr, c.Log) }()
	}
	return c
}

// MaxLine bounds a line of a child's output; a longer line is dropped.
const MaxLine = 64 << 10

// readLines sends the lines of r to lines, dropping those that find it
// full and those longer than MaxLine, and closes lines at the end of r.
// It reads r to its end whatever it holds, so that the child never
// blocks writing.
func readLines(r io.Reader, lines chan<- string) {
	defer close(lines)
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return
			}
			continue
		}
		if len(b) > 0 && b[len(b)-1] == '\n' {
			b = b[:len(b)-1]
		}
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
		if len(b) > 0 || err == nil {
			select {
			case lines <- string(b):
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// Next returns the next line that starts with prefix, skipping the others,
// or false when stdout ends or d passes first.
func (c *Child) Next(prefix string, d time.Duration) (string, bool) {
	end := time.NewTimer(d)
	defer end.Stop()
	for {
		select {
		case line, ok := <-c.Lines:
			if !ok {
				return "", false
			}
			if strings.HasPrefix(line, prefix) {
				return line, true
			}
		case <-end.C:
			return "", false
		}
	}
}

// Kill sends SIGKILL to the child and reaps it; it returns the child's
// exit error. Kill may be called more than once; the child is reaped once.
func (c *Child) Kill() error {
	_ = c.Cmd.Process.Kill()
	return c.Wait()
}

// Wait reaps the child once and returns its exit error. It first reads
// the child's output to its end (the child's exit closes it), so that
// every line the child wrote reaches Lines and Log: exec.Cmd.Wait closes
// the pipes once the child has exited, dropping what they still hold.
func (c *Child) Wait() error {
	c.once.Do(func() {
		c.readers.Wait()
		c.err = c.Cmd.Wait()
	})
	return c.err
}

// ParentGone is for a child: the channel it returns is closed when the
// child's stdin reaches its end, which happens when the parent closes it
// or exits.
func ParentGone() <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(gone)
				return
			}
		}
	}()
	return gone
}
