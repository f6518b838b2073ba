package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
)

// The UPnP IGD client reaches nothing but the gateway: SSDP's M-SEARCH
// goes to the multicast group from one socket bound to the address
// facing the gateway, only answers from the gateway's own address count,
// and HTTP (the description and the SOAP control URL) is dialled only to
// the gateway. Every socket it opens goes through Config.Control (a kill
// switch admits them by their mark). goupnp's own discovery cannot be
// given sockets (it listens on every interface and fetches with
// http.DefaultClient), so discovery and the description are here and
// goupnp's generated clients do the SOAP calls over the HTTP client
// below.

// ssdpGroup is SSDP's IPv4 multicast group and port.
var ssdpGroup = netip.MustParseAddrPort("239.255.255.250:1900")

// upnpServices are the IGD services a mapping is asked of, in order.
var upnpServices = []string{
	internetgateway2.URN_WANIPConnection_2,
	internetgateway2.URN_WANIPConnection_1,
	internetgateway2.URN_WANPPPConnection_1,
}

// Bounds on what the gateway sends.
const (
	maxSSDPLocations = 4       // distinct description URLs followed
	maxGatewayBody   = 1 << 20 // bytes of one answer: a device description or a SOAP reply
	ssdpGrace        = 150 * time.Millisecond
)

// upnpNet is the gateway gw as the UPnP client reaches it from local.
type upnpNet struct {
	gw, local netip.Addr
	control   func(network, address string, c syscall.RawConn) error
	http      *http.Client
}

func (c *Client) upnpNet(gw, local netip.Addr) *upnpNet {
	n := &upnpNet{gw: gw, local: local, control: c.cfg.Control}
	d := &net.Dialer{Timeout: 3 * time.Second, Control: c.cfg.Control}
	n.http = &http.Client{
		Timeout: 5 * time.Second,
		Transport: limitBodies{&http.Transport{
			// No proxy: the gateway is asked directly.
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				ap, err := netip.ParseAddrPort(address)
				if err != nil || ap.Addr().Unmap() != gw {
					return nil, fmt.Errorf("upnp: %s is not the gateway %s", address, gw)
				}
				return d.DialContext(ctx, "tcp4", address)
			},
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 64 << 10,
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("upnp: redirect refused") },
	}
	return n
}

// limitBodies cuts every answer body the gateway sends at maxGatewayBody
// bytes: the device description read here and the SOAP replies goupnp
// decodes from the same client (it reads them whole, unbounded). A longer
// answer ends in a decode error.
type limitBodies struct{ rt http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (l limitBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxGatewayBody), resp.Body}
	return resp, nil
}

// discover finds the gateway's IGD connection services: an SSDP search
// for each of upnpServices, answered within ctx's deadline (at most 1 s
// plus a short grace after the first answer), and the description of
// every location the gateway named.
func (n *upnpNet) discover(ctx context.Context) ([]upnpClient, error) {
	locs, err := n.search(ctx)
	if err != nil {
		return nil, err
	}
	var out []upnpClient
	var errs []error
	for _, loc := range locs {
		root, err := n.describe(ctx, loc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, urn := range upnpServices {
			scs, err := goupnp.NewServiceClientsFromRootDevice(root, loc, urn)
			if err != nil {
				continue // the device has no such service
			}
			for _, sc := range scs {
				sc.SOAPClient.HTTPClient = *n.http
				switch urn {
				case internetgateway2.URN_WANIPConnection_2:
					out = append(out, &internetgateway2.WANIPConnection2{ServiceClient: sc})
				case internetgateway2.URN_WANIPConnection_1:
					out = append(out, &internetgateway2.WANIPConnection1{ServiceClient: sc})
				default:
					out = append(out, &internetgateway2.WANPPPConnection1{ServiceClient: sc})
				}
			}
		}
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("discover: %w", errors.Join(errs...))
		}
		return nil, fmt.Errorf("discover: the gateway %s described no WAN connection service", n.gw)
	}
	return out, nil
}

// search sends the M-SEARCHes and returns the description URLs the
// gateway answered with.
func (n *upnpNet) search(ctx context.Context) ([]*url.URL, error) {
	lc := net.ListenConfig{Control: n.control}
	pc, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(n.local, 0).String())
	if err != nil {
		return nil, fmt.Errorf("ssdp: %w", err)
	}
	defer pc.Close()
	deadline := time.Now().Add(time.Second + ssdpGrace)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Now()) })
	defer stop()
	if err := pc.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("ssdp: %w", err)
	}
	for range 2 { // UDP: sent twice
		for _, st := range upnpServices {
			if _, err := pc.WriteTo(ssdpSearch(st), net.UDPAddrFromAddrPort(ssdpGroup)); err != nil {
				return nil, fmt.Errorf("ssdp: search: %w", err)
			}
		}
	}
	var locs []*url.URL
	seen := map[string]bool{}
	buf := make([]byte, 2048)
	for len(locs) < maxSSDPLocations {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			break // the deadline
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || ua.AddrPort().Addr().Unmap() != n.gw {
			continue // only the gateway
		}
		loc, err := parseSSDPResponse(buf[:k], n.gw)
		if err != nil || seen[loc.String()] {
			continue
		}
		seen[loc.String()] = true
		locs = append(locs, loc)
		if len(locs) == 1 {
			// The other searches' answers come together with the first.
			if g := time.Now().Add(ssdpGrace); g.Before(deadline) {
				deadline = g
				_ = pc.SetDeadline(g)
			}
		}
	}
	if len(locs) == 0 {
		return nil, fmt.Errorf("ssdp: the gateway %s did not answer", n.gw)
	}
	return locs, nil
}

// ssdpSearch is an M-SEARCH for st (UPnP Device Architecture 1.1 §1.3.2).
func ssdpSearch(st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\nHOST: " + ssdpGroup.String() + "\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: " + st + "\r\n\r\n")
}

// parseSSDPResponse validates an answer to ssdpSearch and returns its
// LOCATION, which must be an http URL on the gateway gw with its port.
func parseSSDPResponse(b []byte, gw netip.Addr) (*url.URL, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return nil, fmt.Errorf("ssdp: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ssdp: status %d", resp.StatusCode)
	}
	st := resp.Header.Get("ST")
	if !slices.Contains(upnpServices, st) {
		return nil, fmt.Errorf("ssdp: search target %q", st)
	}
	loc, err := url.Parse(resp.Header.Get("LOCATION"))
	if err != nil {
		return nil, fmt.Errorf("ssdp: location: %w", err)
	}
	if loc.Scheme != "http" || loc.User != nil || loc.Port() == "" {
		return nil, fmt.Errorf("ssdp: location %q is not an http URL with a port", loc)
	}
	if a, err := netip.ParseAddr(loc.Hostname()); err != nil || a.Unmap() != gw {
		return nil, fmt.Errorf("ssdp: location %q is not on the gateway %s", loc, gw)
	}
	return loc, nil
}

// describe fetches and decodes the root device description at loc (as
// goupnp.DeviceByURLCtx, over n's HTTP client).
func (n *upnpNet) describe(ctx context.Context, loc *url.URL) (*goupnp.RootDevice, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("description %s: %w", loc, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("description %s: status %s", loc, resp.Status)
	}
	root := new(goupnp.RootDevice)
	dec := xml.NewDecoder(resp.Body)
	dec.DefaultSpace = goupnp.DeviceXMLNamespace
	dec.CharsetReader = goupnp.CharsetReaderDefault
	if err := dec.Decode(root); err != nil {
		return nil, fmt.Errorf("description %s: %w", loc, err)
	}
	base := loc
	if s := strings.TrimSpace(root.URLBaseStr); s != "" {
		if base, err = url.Parse(s); err != nil {
			return nil, fmt.Errorf("description %s: URLBase: %w", loc, err)
		}
	}
	root.SetURLBase(base)
	return root, nil
}
