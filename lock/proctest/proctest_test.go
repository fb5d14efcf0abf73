package proctest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

const waitDeadline = 20 * time.Second

func TestMain(m *testing.M) {
	Main(m, map[string]func() int{
		"echo": func() int {
			fmt.Println("noise")
			fmt.Println("value " + os.Getenv("PROCTEST_VALUE"))
			<-ParentGone()
			return 0
		},
		"fail":     func() int { return 7 },
		"burst":    burstRole,
		"longline": longLineRole,
		"args": func() int {
			fmt.Println(strings.Join(Args(), ","))
			fmt.Fprintln(os.Stderr, "logged")
			<-ParentGone()
			return 0
		},
	})
}

// TestStartNextStop: a child gets its role and environment, its lines reach
// Next past the ones skipped, and it ends when the parent closes stdin.
func TestStartNextStop(t *testing.T) {
	c := Start(t, "echo", "PROCTEST_VALUE=42")
	line, ok := c.Next("value ", waitDeadline)
	if !ok || line != "value 42" {
		t.Fatalf("Next: %q %v", line, ok)
	}
	c.stdin.Close()
	if err := c.Wait(); err != nil {
		t.Fatalf("child after its stdin closed: %v", err)
	}
	if _, ok := c.Next("", waitDeadline); ok {
		t.Fatal("a line after the child's end")
	}
}

// TestExitStatus: a role's result is the child's exit status, and an
// unknown role exits 3.
func TestExitStatus(t *testing.T) {
	for role, want := range map[string]int{"fail": 7, "nosuchrole": 3} {
		err := Command(role).Run()
		ee, ok := err.(interface{ ExitCode() int })
		if !ok || ee.ExitCode() != want {
			t.Fatalf("%s: %v, want exit status %d", role, err, want)
		}
	}
}

// TestKill: Kill ends a running child and may be repeated.
func TestKill(t *testing.T) {
	c := Start(t, "echo")
	if _, ok := c.Next("value", waitDeadline); !ok {
		t.Fatal("child never ran")
	}
	if err := c.Kill(); err == nil {
		t.Fatal("a killed child exited cleanly")
	}
	if err := c.Kill(); err == nil {
		t.Fatal("second Kill lost the exit error")
	}
}

// TestStartCmdArgsLog: a child gets the arguments after "--" from Args,
// and with a nil cmd.Stderr its stderr lines arrive on Log.
func TestStartCmdArgsLog(t *testing.T) {
	cmd := Command("args")
	cmd.Args = append(cmd.Args, "--", "a", "-b", "c d")
	cmd.Stderr = nil
	c := StartCmd(t, cmd)
	if line, ok := c.Next("", waitDeadline); !ok || line != "a,-b,c d" {
		t.Fatalf("arguments: %q %v", line, ok)
	}
	select {
	case l := <-c.Log:
		if l != "logged" {
			t.Fatalf("log line %q", l)
		}
	case <-time.After(waitDeadline):
		t.Fatal("no log line")
	}
}

// longLineRole prints a line longer than any pipe and line buffer,
// then a short one, and exits.
func longLineRole() int {
	fmt.Println(strings.Repeat("x", 512<<10))
	fmt.Println("after")
	return 0
}

// TestLongLineNoHang: a child that prints a line too long for the
// line reader is still read to its end: the line is dropped, the lines
// after it arrive, and the child exits. readLines used to stop at the
// long line (bufio.Scanner's token limit) and read no more, so the child
// blocked writing into the full pipe and never exited.
func TestLongLineNoHang(t *testing.T) {
	c := Start(t, "longline")
	if line, ok := c.Next("after", waitDeadline); !ok || line != "after" {
		t.Errorf("line after the long one: %q %v", line, ok)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child: %v", err)
		}
	case <-time.After(waitDeadline):
		_ = c.Cmd.Process.Kill()
		<-done
		t.Fatal("the child never exited")
	}
}

// burstLines is how many lines the burst role prints before it
// exits.
const burstLines = 3000

// burstRole prints burstLines lines and exits at once.
func burstRole() int {
	for i := 0; i < burstLines; i++ {
		fmt.Printf("line %d\n", i)
	}
	return 0
}

// TestWaitKeepsLines: every line a child printed before it exited
// reaches Lines, also when the test reaps the child with Wait before
// reading them. Wait used to call exec.Cmd.Wait at once, which closes the
// stdout pipe as soon as the child has exited: the lines still in the pipe
// were lost and Lines closed early.
func TestWaitKeepsLines(t *testing.T) {
	for round := 0; round < 5; round++ {
		c := Start(t, "burst")
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
		n := 0
		end := time.After(waitDeadline)
	read:
		for {
			select {
			case _, ok := <-c.Lines:
				if !ok {
					break read
				}
				n++
			case <-end:
				t.Fatal("Lines not closed")
			}
		}
		if n != burstLines {
			t.Fatalf("round %d: %d lines after Wait, want %d", round, n, burstLines)
		}
	}
}
