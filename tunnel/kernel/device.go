package kernel

import (
	"context"
	"fmt"
	"github.com/openmyst/openmyst/tunnel/connbind"
	"log/slog"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/openmyst/openmyst/tunnel"
)

// wgDevice is a wireguard-go device on a kernel TUN interface.
type wgDevice struct {
	name string
	tun  tun.Device
	dev  *device.Device
	bind *connbind.Bind // the UDP socket plus peers over connections
}

// slogLogger adapts wireguard-go's logger to slog. Verbose messages go to
// Debug, and cost nothing (no formatting) when Debug is off. wireguard-go
// never logs key material.
func slogLogger(log *slog.Logger, ifname string) *device.Logger {
	l := log.With("iface", ifname)
	verbose := device.DiscardLogf
	if l.Enabled(context.Background(), slog.LevelDebug) {
		verbose = func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) }
	}
	return &device.Logger{
		Verbosef: verbose,
		Errorf:   func(format string, args ...any) { l.Warn(fmt.Sprintf(format, args...)) },
	}
}

// newWGDevice creates the TUN interface name with mtu and a wireguard-go
// device on it, configured with priv, listenPort (0: any) and fwmark (0:
// none), and brings the device up (its UDP sockets open in the calling
// thread's network namespace).
func newWGDevice(name string, mtu int, priv tunnel.PrivateKey, listenPort uint16, fwmark uint32, log *slog.Logger) (*wgDevice, error) {
	if err := validIfName(name); err != nil {
		return nil, err
	}
	if linkExists(name) {
		return nil, fmt.Errorf("create tun %s: an interface with that name already exists", name)
	}
	t, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("create tun %s: %w", name, err)
	}
	if real, err := t.Name(); err == nil {
		name = real
	}
	// The default bind batches with recvmmsg/sendmmsg and uses UDP GSO/GRO
	// where the kernel supports them; the TUN was opened with IFF_VNET_HDR,
	// so TCP segments arrive and leave as large GSO/GRO batches.
	bind := connbind.New(conn.NewDefaultBind())
	dev := device.NewDevice(t, bind, slogLogger(log, name))
	cfg := tunnel.DeviceUAPI(priv, listenPort)
	if fwmark != 0 {
		cfg += fmt.Sprintf("fwmark=%d\n", fwmark)
	}
	if err := dev.IpcSet(cfg); err != nil {
		dev.Close()
		return nil, fmt.Errorf("configure wireguard device %s: %w", name, err)
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("bring up wireguard device %s: %w", name, err)
	}
	return &wgDevice{name: name, tun: t, dev: dev, bind: bind}, nil
}

// listenPort returns the UDP port the device listens on.
func (d *wgDevice) listenPort() (uint16, error) {
	get, err := d.dev.IpcGet()
	if err != nil {
		return 0, fmt.Errorf("read wireguard device %s: %w", d.name, err)
	}
	return parseListenPort(get)
}

// stats returns the counters of every peer.
func (d *wgDevice) stats() (map[tunnel.PublicKey]tunnel.PeerStats, error) {
	get, err := d.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("read wireguard device %s: %w", d.name, err)
	}
	return tunnel.ParseUAPIStats(get)
}

// peerStats returns the counters of pub, and false if there is no such
// peer or the device cannot be read (logged to log).
func (d *wgDevice) peerStats(pub tunnel.PublicKey, log *slog.Logger) (tunnel.PeerStats, bool) {
	all, err := d.stats()
	if err != nil {
		log.Warn("read peer stats", "err", err)
		return tunnel.PeerStats{}, false
	}
	st, ok := all[pub]
	return st, ok
}

// close shuts the device down; closing the TUN file deletes the interface
// together with its addresses and routes.
func (d *wgDevice) close() {
	d.dev.Close()
	d.bind.Shutdown()
}

// setPeer adds or updates a peer, carrying it over cfg.Conn if set.
func (d *wgDevice) setPeer(cfg tunnel.PeerConfig) error {
	if cfg.Conn != nil {
		d.bind.Remove(cfg.PublicKey.Hex()) // an update may bring a new connection
		if _, err := d.bind.Add(cfg.PublicKey.Hex(), cfg.Conn); err != nil {
			return err
		}
	}
	if err := d.dev.IpcSet(tunnel.PeerUAPI(cfg)); err != nil {
		if cfg.Conn != nil {
			d.bind.Remove(cfg.PublicKey.Hex())
		}
		return err
	}
	return nil
}

// removePeer removes a peer and closes its connection, if it had one.
func (d *wgDevice) removePeer(pub tunnel.PublicKey) error {
	err := d.dev.IpcSet(tunnel.RemovePeerUAPI(pub))
	d.bind.Remove(pub.Hex())
	return err
}

// tunBatchSize is how many packets one TUN read or write moves: above 1
// when the kernel accepted IFF_VNET_HDR and the TSO/checksum offloads, so
// wireguard-go exchanges GSO/GRO super-packets with the kernel.
func (d *wgDevice) tunBatchSize() int { return d.tun.BatchSize() }
