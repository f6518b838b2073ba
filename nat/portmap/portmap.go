// Package portmap asks the home router to forward a port: NAT-PMP
// (RFC 6886, which PCP routers also answer) first, then UPnP IGD
// (WANIPConnection v1/v2, WANPPPConnection), of the default gateway
// only. A provider behind a NAT that offers either gets a public address
// and port for its WireGuard socket without its owner forwarding
// anything by hand.
//
// A Keeper holds one mapping for as long as its context lives: it renews
// the lease at half its lifetime, retries with backoff when the router
// stops answering, and removes the mapping when it stops, so a node that
// shuts down leaves no hole in the router.
package portmap

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// Methods a mapping can be made with.
const (
	MethodNATPMP = "natpmp"
	MethodUPnP   = "upnp"
)

// Protocols a mapping can be for.
const (
	UDP = "udp"
	TCP = "tcp"
)

// Mapping is a port the router forwards to this host.
type Mapping struct {
	// Method is how the mapping was made (MethodNATPMP or MethodUPnP).
	Method string
	// Protocol is UDP or TCP.
	Protocol string
	// Internal is this host's address and port the router forwards to.
	Internal netip.AddrPort
	// External is the router's public address and port.
	External netip.AddrPort
	// Lifetime is how long the router keeps the mapping without renewal.
	Lifetime time.Duration

	upnp upnpClient // the gateway that made a UPnP mapping
}

// Config configures a Client.
type Config struct {
	// Gateway is the router to ask; zero means the default route's
	// gateway (from /proc/net/route).
	Gateway netip.Addr
	// Lifetime is the lease asked for; zero means DefaultLifetime.
	Lifetime time.Duration
	// Description names the mapping in the router's UPnP table.
	Description string
	// Methods lists the methods to try, in order; nil means NAT-PMP, then
	// UPnP.
	Methods []string
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
	// Control, when set, is called on every socket the UPnP client opens
	// (SSDP discovery's UDP socket, the TCP connections to the gateway's
	// description and control URLs) before it is bound or connected:
	// e.g. to set SO_MARK, by which a kill switch admits them. NAT-PMP's
	// sockets are the library's and do not get it.
	Control func(network, address string, c syscall.RawConn) error
}

// DefaultLifetime is the lease a Client asks for by default. Renewal
// happens at half of it.
const DefaultLifetime = time.Hour

// ErrNoGateway means no router answered any of the methods tried.
var ErrNoGateway = errors.New("portmap: no router answered NAT-PMP or UPnP")

// Client makes mappings on the local router.
type Client struct {
	cfg Config
	log *slog.Logger
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Description == "" {
		cfg.Description = "openmyst"
	}
	if len(cfg.Methods) == 0 {
		cfg.Methods = []string{MethodNATPMP, MethodUPnP}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Client{cfg: cfg, log: log.With("component", "portmap")}
}

func (c *Client) gateway() (netip.Addr, error) {
	if c.cfg.Gateway.IsValid() {
		return c.cfg.Gateway, nil
	}
	return DefaultGateway()
}

// Map asks the router to forward protocol port port on its public address
// to this host's same port, trying each configured method in order, and
// returns the first mapping made. The router may pick another external
// port; Mapping.External says which.
func (c *Client) Map(ctx context.Context, protocol string, port uint16) (Mapping, error) {
	if protocol != UDP && protocol != TCP {
		return Mapping{}, fmt.Errorf("portmap: protocol %q is neither udp nor tcp", protocol)
	}
	if port == 0 {
		return Mapping{}, errors.New("portmap: port 0")
	}
	gw, err := c.gateway()
	if err != nil {
		return Mapping{}, err
	}
	local, err := LocalAddrTowards(gw)
	if err != nil {
		return Mapping{}, err
	}
	var errs []error
	for _, method := range c.cfg.Methods {
		var m Mapping
		var err error
		switch method {
		case MethodNATPMP:
			m, err = c.mapNATPMP(ctx, gw, local, protocol, port)
		case MethodUPnP:
			m, err = c.mapUPnP(ctx, gw, local, protocol, port)
		default:
			err = fmt.Errorf("unknown method %q", method)
		}
		if err == nil {
			c.log.Info("port mapped", "method", m.Method, "protocol", protocol, "internal", m.Internal, "external", m.External, "lifetime", m.Lifetime)
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", method, err))
		if ctx.Err() != nil {
			break
		}
	}
	return Mapping{}, fmt.Errorf("%w (gateway %s): %w", ErrNoGateway, gw, errors.Join(errs...))
}

// Unmap removes m from the router.
func (c *Client) Unmap(ctx context.Context, m Mapping) error {
	switch m.Method {
	case MethodNATPMP:
		gw, err := c.gateway()
		if err != nil {
			return err
		}
		pmp := natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), rpcTimeout(ctx))
		// A lifetime of 0 deletes the mapping (RFC 6886 §3.4).
		if _, err := pmp.AddPortMapping(m.Protocol, int(m.Internal.Port()), 0, 0); err != nil {
			return fmt.Errorf("portmap: natpmp delete %s/%d: %w", m.Protocol, m.Internal.Port(), err)
		}
		return nil
	case MethodUPnP:
		if m.upnp == nil {
			return errors.New("portmap: upnp mapping without its gateway")
		}
		if err := m.upnp.DeletePortMappingCtx(ctx, "", m.External.Port(), strings.ToUpper(m.Protocol)); err != nil {
			return fmt.Errorf("portmap: upnp delete %s/%d: %w", m.Protocol, m.External.Port(), err)
		}
		return nil
	}
	return fmt.Errorf("portmap: unknown method %q", m.Method)
}

// rpcTimeout bounds one NAT-PMP exchange by ctx's deadline, at most 3 s
// (the library's own schedule retries for a minute).
func rpcTimeout(ctx context.Context) time.Duration {
	d := 3 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return max(d, 10*time.Millisecond)
}

func (c *Client) mapNATPMP(ctx context.Context, gw, local netip.Addr, protocol string, port uint16) (Mapping, error) {
	pmp := natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), rpcTimeout(ctx))
	ext, err := pmp.GetExternalAddress()
	if err != nil {
		return Mapping{}, fmt.Errorf("external address: %w", err)
	}
	pub := netip.AddrFrom4(ext.ExternalIPAddress)
	res, err := pmp.AddPortMapping(protocol, int(port), int(port), int(c.cfg.Lifetime/time.Second))
	if err != nil {
		return Mapping{}, fmt.Errorf("map %s/%d: %w", protocol, port, err)
	}
	if res.MappedExternalPort == 0 || res.PortMappingLifetimeInSeconds == 0 {
		return Mapping{}, fmt.Errorf("map %s/%d: the router answered port %d lifetime %d", protocol, port, res.MappedExternalPort, res.PortMappingLifetimeInSeconds)
	}
	return Mapping{
		Method:   MethodNATPMP,
		Protocol: protocol,
		Internal: netip.AddrPortFrom(local, port),
		External: netip.AddrPortFrom(pub, res.MappedExternalPort),
		Lifetime: time.Duration(res.PortMappingLifetimeInSeconds) * time.Second,
	}, nil
}

// upnpClient is what the WANIPConnection and WANPPPConnection services
// have in common.
type upnpClient interface {
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string, internalPort uint16, internalClient string, enabled bool, description string, leaseDuration uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
}

func (c *Client) mapUPnP(ctx context.Context, gw, local netip.Addr, protocol string, port uint16) (Mapping, error) {
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	gws, err := c.upnpNet(gw, local).discover(dctx)
	if err != nil {
		return Mapping{}, err
	}
	var errs []error
	for _, igd := range gws {
		ipStr, err := igd.GetExternalIPAddressCtx(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("external address: %w", err))
			continue
		}
		pub, err := netip.ParseAddr(ipStr)
		if err != nil || !pub.Is4() || pub.IsUnspecified() {
			errs = append(errs, fmt.Errorf("the gateway reports external address %q", ipStr))
			continue
		}
		lease := uint32(c.cfg.Lifetime / time.Second)
		err = igd.AddPortMappingCtx(ctx, "", port, strings.ToUpper(protocol), port, local.String(), true, c.cfg.Description, lease)
		if err != nil {
			errs = append(errs, fmt.Errorf("map %s/%d: %w", protocol, port, err))
			continue
		}
		return Mapping{
			Method:   MethodUPnP,
			Protocol: protocol,
			Internal: netip.AddrPortFrom(local, port),
			External: netip.AddrPortFrom(pub.Unmap(), port),
			Lifetime: c.cfg.Lifetime,
			upnp:     igd,
		}, nil
	}
	return Mapping{}, errors.Join(errs...)
}

// LocalAddrTowards is the local address the kernel picks to send to a
// (a connected UDP socket, nothing sent): the address a router a must
// forward to, or a itself on a public host.
func LocalAddrTowards(a netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("portmap: route to %s: %w", a, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// DefaultGateway reads the IPv4 default route's gateway from
// /proc/net/route.
func DefaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("portmap: default gateway: %w", err)
	}
	defer f.Close()
	return parseRoutes(bufio.NewScanner(f))
}

// parseRoutes finds the default route's gateway in the text of
// /proc/net/route (little-endian hex fields).
func parseRoutes(s *bufio.Scanner) (netip.Addr, error) {
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 3 || f[1] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(f[2])
		if err != nil || len(b) != 4 {
			continue
		}
		gw := netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]})
		if !gw.IsUnspecified() {
			return gw, nil
		}
	}
	if err := s.Err(); err != nil {
		return netip.Addr{}, fmt.Errorf("portmap: read routes: %w", err)
	}
	return netip.Addr{}, errors.New("portmap: no IPv4 default gateway")
}
