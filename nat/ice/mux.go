package ice

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	pion "github.com/pion/ice/v4"
	"github.com/pion/logging"
)

// Mux is one UDP socket on a fixed port that every session's agent of a
// node shares for its host candidate, announced at a public address the
// port is reachable at: a port the home router forwards, mapped with
// NAT-PMP/UPnP (nat/portmap) or by hand. A consumer behind a symmetric
// NAT, which no punched hole can reach, reaches such a candidate
// directly. Agents with a Mux gather no other host candidates;
// server-reflexive and relayed ones as before.
type Mux struct {
	conn *net.UDPConn
	mux  *pion.UDPMuxDefault

	mu  sync.Mutex
	ext netip.Addr
}

// ListenMux opens the shared socket on local (a specific address, not
// the unspecified one: the router forwards to one address) and announces
// it at external (zero: not yet known, see SetExternal). The router must
// forward the same port number on external to local's port (port 0 picks
// a free one: tests).
func ListenMux(local netip.AddrPort, external netip.Addr) (*Mux, error) {
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		return nil, fmt.Errorf("ice: mux needs a specific local address, not %s", local)
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, fmt.Errorf("ice: mux: %w", err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	m := &Mux{conn: c, mux: pion.NewUDPMuxDefault(pion.UDPMuxParams{UDPConn: c, Logger: lf.NewLogger("ice-mux")})}
	m.SetExternal(external)
	return m, nil
}

// SetExternal changes the public address announced for the mux's port
// (a renewed mapping whose address changed); zero stops announcing it:
// agents made afterwards gather ordinary host candidates instead.
func (m *Mux) SetExternal(a netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ext = a.Unmap()
}

// External is the announced address and port of the mux, or a zero value
// when no public address is known.
func (m *Mux) External() netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ext.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(m.ext, m.Port())
}

// Port is the mux socket's local port.
func (m *Mux) Port() uint16 { return m.conn.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

func (m *Mux) local() netip.Addr { return m.conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap() }

// external is External of a possibly nil mux.
func (m *Mux) external() netip.AddrPort {
	if m == nil {
		return netip.AddrPort{}
	}
	return m.External()
}

// setMark sets SO_MARK on the shared socket (Config.SocketMark).
func (m *Mux) setMark(mark uint32) error {
	rc, err := m.conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("ice: mux: %w", err)
	}
	return setMark(rc, mark)
}

// Close closes the socket; agents still using it lose their host
// candidate.
func (m *Mux) Close() error {
	err := m.mux.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("ice: close mux: %w", err)
	}
	return nil
}
