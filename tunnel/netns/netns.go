package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmyst/openmyst/internal/testenv"
)

// runDir is where iproute2 keeps the bind mounts of named namespaces.
const runDir = "/run/netns"

// NS is one named network namespace owned by a test.
type NS struct {
	name string
	tb   testing.TB
}

// New creates a fresh network namespace for tb with its loopback up, and
// deletes it (killing any process still inside) when the test ends. label
// is a short human hint that becomes part of the namespace's name. New
// skips the test, with the reason, when namespaces are not usable.
func New(tb testing.TB, label string) *NS {
	tb.Helper()
	testenv.RequireNetns(tb)
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		tb.Fatalf("netns: random name: %v", err)
	}
	name := "omt-" + label + "-" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		testenv.SkipOrFail(tb, "cannot create a network namespace (ip netns add: %v: %s)", err, bytes.TrimSpace(out))
	}
	n := &NS{name: name, tb: tb}
	tb.Cleanup(n.destroy)
	n.MustRun("ip", "link", "set", "lo", "up")
	return n
}

// Name is the namespace's name as `ip netns` knows it.
func (n *NS) Name() string { return n.name }

// Path is the namespace's bind-mount path, usable with setns(2).
func (n *NS) Path() string { return runDir + "/" + n.name }

func (n *NS) destroy() {
	// Kill whatever the test left running inside, then drop the namespace.
	if out, err := exec.Command("ip", "netns", "pids", n.name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	// ip netns del fails while a killed process is still being reaped; retry briefly.
	var out []byte
	var err error
	for i := 0; i < 20; i++ {
		out, err = exec.Command("ip", "netns", "del", n.name).CombinedOutput()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.tb.Errorf("netns: delete %s: %v: %s", n.name, err, bytes.TrimSpace(out))
}

// Command returns a command that runs name with args inside the namespace
// (through `ip netns exec`, which also bind-mounts /etc/netns/<ns>/* files
// such as resolv.conf over /etc).
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	full := append([]string{"netns", "exec", n.name, name}, args...)
	return exec.CommandContext(ctx, "ip", full...)
}

// Run runs name with args inside the namespace and returns its combined
// output; the error includes the output.
func (n *NS) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netns %s: %s %s: %w: %s", n.name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Nft loads the nft -f script inside the namespace (nft applies it as
// one transaction); the error includes nft's output.
func (n *NS) Nft(ctx context.Context, script string) error {
	cmd := n.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netns %s: nft -f: %w: %s", n.name, err, bytes.TrimSpace(out))
	}
	return nil
}

// MustRun is Run with a 30 s limit that fails the test on error.
func (n *NS) MustRun(name string, args ...string) string {
	n.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := n.Run(ctx, name, args...)
	if err != nil {
		n.tb.Fatal(err)
	}
	return out
}

// Start starts a long-running command inside the namespace with its output
// going to the test log prefix-free buffer returned by Output. The process
// is killed and reaped when the test ends, if it is still running.
func (n *NS) Start(name string, args ...string) *Proc {
	n.tb.Helper()
	cmd := n.Command(context.Background(), name, args...)
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.tb.Fatalf("netns %s: start %s: %v", n.name, name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.tb.Cleanup(func() { p.Kill() })
	return p
}

// Proc is a process started with NS.Start.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  LockedBuffer
	err  error
}

// Pid is the process id (of `ip netns exec`, which execs the command, so
// it is the command's own pid).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process has written to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited is closed when the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Kill sends SIGKILL to the process group and waits for the process to be
// reaped; it returns the process's exit error.
func (p *Proc) Kill() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return p.err
}

// Signal sends sig to the process and waits up to timeout for it to exit;
// it returns an error if the process did not exit in time.
func (p *Proc) Signal(sig syscall.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("process %d did not exit %v after %v", p.Pid(), timeout, sig)
	}
}

// Do runs f on an OS thread that has been moved into the namespace and
// returns f's error. Sockets, TUN devices and child processes created by f
// (on that thread) belong to the namespace. Goroutines that f starts run on
// other threads, in the original namespace. After f the thread is moved
// back; if that fails it is never returned to the Go scheduler.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open own namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		fd, err := unix.Open(n.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: open: %w", n.name, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", n.name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime then retires this thread when the
			// goroutine exits instead of reusing it in the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("netns %s: switch back: %w", n.name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Link creates a veth pair with one end, aIf, in a and the other, bIf, in
// b, assigns the addresses (CIDR notation, e.g. "203.0.113.1/24"; empty
// means none; several separated by commas) and brings both ends up.
func Link(tb testing.TB, a *NS, aIf, aAddrs string, b *NS, bIf, bAddrs string) {
	tb.Helper()
	a.MustRun("ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name)
	for _, side := range []struct {
		ns    *NS
		ifc   string
		addrs string
	}{{a, aIf, aAddrs}, {b, bIf, bAddrs}} {
		for _, addr := range strings.Split(side.addrs, ",") {
			if addr = strings.TrimSpace(addr); addr != "" {
				args := []string{"addr", "add", addr, "dev", side.ifc}
				if strings.Contains(addr, ":") {
					args = append([]string{"-6"}, append(args, "nodad")...)
				}
				side.ns.MustRun("ip", args...)
			}
		}
		side.ns.MustRun("ip", "link", "set", side.ifc, "up")
	}
}
