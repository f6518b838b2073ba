package kernel

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// The namespace tests run the exit and the client in child processes of
// the test binary started with `ip netns exec`, so the whole process (and
// every goroutine and socket wireguard-go creates) lives in the namespace.
// A child reads commands on stdin and answers one line each on stdout.

const helperEnv = "OPENMYST_KERNEL_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		// Every goroutine the tests start in this process (servers,
		// helper readers, dials inside namespaces) must be gone at the end.
		goleak.VerifyTestMain(m)
	case "exit":
		os.Exit(helperExit())
	case "client":
		os.Exit(helperClient())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// exitSpec is the exit helper's configuration (JSON in the environment).
type exitSpec struct {
	PrivateKey string
	ListenPort uint16
	OwnAddrs   []netip.Addr
	Deny       []string
	Allow      []string
	DNS        []netip.Addr
	Peers      []tunnel.PeerConfig
}

// reconfigureSpec is the argument of the client helper's reconfigure.
type reconfigureSpec struct {
	WGQuick string
	Direct  []netip.AddrPort
}

// clientSpec is the client helper's configuration.
type clientSpec struct {
	WGQuick    string
	ResolvConf string
	// Conn, when set, carries the tunnel over a UDP socket connected to
	// it (the test's stand-in for an ICE connection; ClientConfig.Conn,
	// with Conn as ClientConfig.Path).
	Conn netip.AddrPort
}

func helperLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func helperExit() int {
	var spec exitSpec
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv+"_SPEC")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "spec:", err)
		return 2
	}
	priv, err := tunnel.ParsePrivateKey(spec.PrivateKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "key:", err)
		return 2
	}
	pc := tunnel.PolicyConfig{OwnAddrs: spec.OwnAddrs, InterfaceAddrs: true}
	for _, d := range spec.Deny {
		r, err := tunnel.ParseRule(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rule:", err)
			return 2
		}
		pc.Deny = append(pc.Deny, r)
	}
	for _, a := range spec.Allow {
		r, err := tunnel.ParseRule(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rule:", err)
			return 2
		}
		pc.Allow = append(pc.Allow, r)
	}
	pol, err := tunnel.NewExitPolicy(pc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "policy:", err)
		return 2
	}
	ctx := context.Background()
	e, err := NewExit(ctx, ExitConfig{PrivateKey: priv, ListenPort: spec.ListenPort, Policy: pol, DNSUpstream: spec.DNS, AddrPollInterval: 100 * time.Millisecond, Log: helperLog()})
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	defer e.Close()
	for _, p := range spec.Peers {
		if err := e.AddPeer(ctx, p); err != nil {
			fmt.Println("ERR", err)
			return 1
		}
	}
	fmt.Println("READY", e.Endpoint().Port(), e.TUNBatchSize())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "stats":
			pub, err := tunnel.ParsePublicKey(arg)
			st, ok := e.PeerStats(pub)
			if err != nil || !ok {
				fmt.Println("ERR no such peer")
				continue
			}
			b, _ := json.Marshal(st)
			fmt.Println(string(b))
		case "blocked":
			fmt.Println(e.Blocked())
		case "setextra":
			// The node's public/mapped addresses, comma separated.
			var addrs []netip.Addr
			var perr error
			for _, f := range strings.FieldsFunc(arg, func(r rune) bool { return r == ',' }) {
				a, err := netip.ParseAddr(f)
				perr = errors.Join(perr, err)
				addrs = append(addrs, a)
			}
			if perr != nil {
				answer(perr)
				continue
			}
			answer(pol.SetExtraDenied(addrs))
		case "addpeer":
			var p tunnel.PeerConfig
			if err := json.Unmarshal([]byte(arg), &p); err != nil {
				answer(err)
				continue
			}
			answer(e.AddPeer(ctx, p))
		case "attach": // attach <pub> <listen addr:port>: the peer's datagrams over a socket of their own
			answer(helperAttach(e, arg))
		case "removepeer":
			pub, _ := tunnel.ParsePublicKey(arg)
			answer(e.RemovePeer(pub))
		case "quit":
			return helperQuit(e)
		default:
			fmt.Println("ERR unknown command")
		}
	}
	return 0
}

func helperClient() int {
	var spec clientSpec
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv+"_SPEC")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "spec:", err)
		return 2
	}
	sess, err := tunnel.ParseWGQuick([]byte(spec.WGQuick))
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	cfg := ClientConfig{Session: sess, ResolvConf: spec.ResolvConf, Log: helperLog()}
	if spec.Conn.IsValid() {
		uc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(spec.Conn))
		if err != nil {
			fmt.Println("ERR", err)
			return 1
		}
		cfg.Conn, cfg.Path = uc, []netip.AddrPort{spec.Conn}
	}
	c, err := Connect(context.Background(), cfg)
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	defer c.Close()
	fmt.Println("READY", c.TUNBatchSize())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "stats":
			b, _ := json.Marshal(c.Stats())
			fmt.Println(string(b))
		case "setpeer": // setpeer <pub> <endpoint>
			answer(helperSetPeer(c, arg))
		case "reconfigure": // reconfigure <base64 JSON of reconfigureSpec>
			var rs reconfigureSpec
			b, err := base64.StdEncoding.DecodeString(arg)
			if err == nil {
				err = json.Unmarshal(b, &rs)
			}
			var ns tunnel.SessionConfig
			if err == nil {
				ns, err = tunnel.ParseWGQuick([]byte(rs.WGQuick))
			}
			if err == nil {
				err = c.Reconfigure(context.Background(), ns, Route{Direct: rs.Direct})
			}
			answer(err)
		case "quit":
			return helperQuit(c)
		default:
			fmt.Println("ERR unknown command")
		}
	}
	return 0
}

// helper is a running helper child as the test sees it.
type helper struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *strings.Builder
	mu     sync.Mutex
	done   chan struct{}
}

// startHelper starts the test binary as a helper of kind inside ns and
// waits for its READY line, returning the words after READY.
// answer prints a command's reply to the test: "OK", or "ERR" and err.
func answer(err error) {
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	fmt.Println("OK")
}

// helperQuit closes c, answers, and returns the helper's exit code.
func helperQuit(c io.Closer) int {
	if err := c.Close(); err != nil {
		answer(err)
		return 1
	}
	answer(nil)
	return 0
}

// helperAttach runs "attach <pub> <listen addr:port>": the peer's
// datagrams over a socket of their own.
func helperAttach(e *Exit, arg string) error {
	f := strings.Fields(arg)
	if len(f) != 2 {
		return errors.New("usage: attach <pub> <addr:port>")
	}
	pub, err := tunnel.ParsePublicKey(f[0])
	if err != nil {
		return err
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(f[1])))
	if err != nil {
		return err
	}
	return e.AttachConn(pub, &learningConn{UDPConn: pc})
}

// helperSetPeer runs "setpeer <pub> <endpoint>".
func helperSetPeer(c *Client, arg string) error {
	f := strings.Fields(arg)
	if len(f) != 2 {
		return errors.New("want pub and endpoint")
	}
	pub, err := tunnel.ParsePublicKey(f[0])
	if err != nil {
		return err
	}
	ep, err := netip.ParseAddrPort(f[1])
	if err != nil {
		return err
	}
	return c.SetPeer(context.Background(), pub, ep)
}

func startHelper(t *testing.T, ns *netns.NS, kind string, spec any) (*helper, []string) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+kind, helperEnv+"_SPEC="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	h := &helper{t: t, cmd: cmd, lines: make(chan string, 16), stderr: &strings.Builder{}, done: make(chan struct{})}
	cmd.Stderr = lockedWriter{&h.mu, h.stderr}
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		_ = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(h.kill)
	line := h.read(20 * time.Second)
	if !strings.HasPrefix(line, "READY") {
		t.Fatalf("%s helper did not start: %q\nstderr:\n%s", kind, line, h.logs())
	}
	return h, strings.Fields(line)[1:]
}

func (h *helper) logs() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stderr.String()
}

func (h *helper) read(timeout time.Duration) string {
	select {
	case l, ok := <-h.lines:
		if !ok {
			return "<exited>"
		}
		return l
	case <-time.After(timeout):
		return "<timeout>"
	}
}

// call sends one command line and returns the answer line.
func (h *helper) call(line string) string {
	h.t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		h.t.Fatalf("helper %q: %v\nstderr:\n%s", line, err, h.logs())
	}
	// A command may wait for a whole handshake timeout (a dead endpoint).
	return h.read(tunnel.DefaultHandshakeTimeout + 10*time.Second)
}

// kill SIGKILLs the helper (a crash) and waits for it.
func (h *helper) kill() {
	select {
	case <-h.done:
		return
	default:
	}
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	<-h.done
}

// quit asks the helper to close cleanly and waits for it to exit.
func (h *helper) quit() {
	h.t.Helper()
	if got := h.call("quit"); got != "OK" {
		h.t.Fatalf("quit: %q\nstderr:\n%s", got, h.logs())
	}
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("helper did not exit after quit")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// learningConn is a datagram net.Conn over an unconnected UDP socket that
// answers whoever sent the last datagram, as an ICE connection answers its
// selected pair (the test's stand-in for one).
type learningConn struct {
	*net.UDPConn
	mu   sync.Mutex
	peer netip.AddrPort
}

func (c *learningConn) Read(b []byte) (int, error) {
	n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
	if err == nil {
		c.mu.Lock()
		c.peer = from
		c.mu.Unlock()
	}
	return n, err
}

func (c *learningConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	peer := c.peer
	c.mu.Unlock()
	if !peer.IsValid() {
		return 0, errors.New("learningConn: no peer yet")
	}
	return c.UDPConn.WriteToUDPAddrPort(b, peer)
}
