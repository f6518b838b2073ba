package natlab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/tunnel/netns"
)

// Child is a process of the test binary running a role inside a lab
// namespace: a Go process cannot move all its threads into a namespace,
// and libraries (pion, libp2p, HTTP) open sockets from goroutines of their
// own, so each networked role runs as a child. The child talks in lines:
// it prints "WORD rest" lines on stdout and reads lines on stdin; a line
// "FATAL ..." ends every Expect with the child's output.
//
// The test binary dispatches on an environment variable in its TestMain
// and runs the role instead of the tests; see StartChild.
type Child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	out    strings.Builder // lines consumed so far
	errOut netns.LockedBuffer
	done   chan struct{}
	once   sync.Once
}

// StartChild starts the test binary (os.Args[0], running no test) in ns
// with env added to this process's environment, and stops it when the
// test ends.
func StartChild(tb testing.TB, ns *netns.NS, env ...string) *Child {
	tb.Helper()
	cmd := ns.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &Child{cmd: cmd, lines: make(chan string, 256), done: make(chan struct{})}
	cmd.Stderr = &c.errOut
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	c.stdin = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("natlab: start child in %s: %v", ns.Name(), err)
	}
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(stdout)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	tb.Cleanup(c.Stop)
	return c
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Send writes one line to the child's stdin.
func (c *Child) Send(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if _, err := fmt.Fprintf(c.stdin, format+"\n", args...); err != nil {
		tb.Fatalf("natlab: write to child: %v", err)
	}
}

// Expect waits up to within for a line "prefix rest" (or exactly prefix)
// and returns rest. It fails the test on a "FATAL" line, on exit, or on
// timeout, with everything the child printed.
func (c *Child) Expect(tb testing.TB, prefix string, within time.Duration) string {
	tb.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				tb.Fatalf("child exited before %q:\n%s", prefix, c.Output())
			}
			c.out.WriteString(l + "\n")
			if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
				return rest
			}
			if l == prefix {
				return ""
			}
			if strings.HasPrefix(l, "FATAL ") {
				tb.Fatalf("child: %s\n%s", l, c.Output())
			}
		case <-timer.C:
			tb.Fatalf("no %q from the child within %v:\n%s", prefix, within, c.Output())
		}
	}
}

// Output is what the child printed so far that Expect has read, and its
// standard error.
func (c *Child) Output() string {
	return c.out.String() + "stderr:\n" + c.errOut.String()
}

// Stop ends the child (SIGTERM, then SIGKILL after 5 s) and waits for it.
// It is safe to call more than once.
func (c *Child) Stop() {
	c.once.Do(func() {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
		_ = c.cmd.Wait()
	})
}
