package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/stun/v3"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/internal/atomicfile"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/punch"
	"github.com/openmyst/openmyst/relay"
)

// RelaySecretFile is the relay's credential secret in its data directory.
const RelaySecretFile = "relay.secret"

// DefaultICETimeout bounds a session's ICE checks: a session whose checks
// find no pair by then falls back to the provider's UDP endpoint.
const DefaultICETimeout = 10 * time.Second

// ICESettings are the STUN and TURN servers a node uses for its
// sessions' ICE (flags --ice.server, --ice.turn-credentials-file): the
// network's relays, never a third party's by default.
type ICESettings struct {
	// Servers are stun:host:port, turn:host:port?transport=udp|tcp and
	// turns:host:port URLs.
	Servers []string
	// TURNUsername and TURNPassword are the TURN servers' credentials
	// (TURN REST credentials from the relay operator, `myst relay
	// credentials`).
	TURNUsername, TURNPassword string
	// TURNCredentialsFile, when set, holds one line "username:password"
	// (the two values `myst relay credentials` prints; read by Config),
	// instead of the two fields above.
	TURNCredentialsFile string
	// Timeout bounds a session's checks (zero: DefaultICETimeout).
	Timeout time.Duration
}

// Register declares --ice.server and --ice.turn-credentials-file on fs;
// when ("" or e.g. "with --tun --standalone: ") starts their help.
func (s *ICESettings) Register(fs *pflag.FlagSet, when string) {
	fs.StringSliceVar(&s.Servers, "ice.server", nil, when+"the network's STUN/TURN servers for sessions through NATs: stun:HOST:3478, turn:HOST:3478?transport=udp|tcp, turns:HOST:5349 (none: the static WireGuard endpoint)")
	fs.StringVar(&s.TURNCredentialsFile, "ice.turn-credentials-file", "", when+"file with one line username:password for the TURN servers (myst relay credentials)")
}

// Config returns the ICE configuration of the settings, or nil when they
// name no server (sessions then use the provider's static endpoint).
func (s ICESettings) Config() (*ice.Config, error) {
	if len(s.Servers) == 0 {
		return nil, nil
	}
	if s.TURNCredentialsFile != "" {
		b, err := os.ReadFile(s.TURNCredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("--ice.turn-credentials-file: %w", err)
		}
		// A TURN REST username is "<expiry>:<user>"; the password
		// (base64) has no colon: split at the last one.
		line := strings.TrimSpace(string(b))
		i := strings.LastIndexByte(line, ':')
		if i <= 0 || i == len(line)-1 {
			return nil, fmt.Errorf("--ice.turn-credentials-file %s: want one line username:password", s.TURNCredentialsFile)
		}
		s.TURNUsername, s.TURNPassword = line[:i], line[i+1:]
	}
	var stunURLs, turnURLs []string
	for _, u := range s.Servers {
		if strings.HasPrefix(u, "stun:") {
			stunURLs = append(stunURLs, u)
		} else {
			turnURLs = append(turnURLs, u)
		}
	}
	servers, err := ice.ParseServers(stunURLs, turnURLs, s.TURNUsername, s.TURNPassword)
	if err != nil {
		return nil, fmt.Errorf("--ice.server: %w", err)
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultICETimeout
	}
	cfg := &ice.Config{Servers: servers, Timeout: s.Timeout}
	cfg.Loopback, cfg.Policy.AllowPrivate = serversScope(s.Servers)
	if !cfg.Loopback {
		// Birthday punching between a symmetric and an
		// endpoint-independent NAT; it runs only where two STUN
		// destinations tell the mapping and the session protocol
		// carries it (see docs/reachability.md).
		cfg.Punch = &punch.Config{}
	}
	return cfg, nil
}

// serversScope tells, from a node's STUN/TURN server URLs, whether its
// network lives on this machine (every server on a loopback address: a
// devnet, whose nodes then gather loopback candidates only) or on
// private addresses (every server on a loopback or private address: a
// devnet or LAN lab). Only then may candidates be private addresses
// (ice.CandidatePolicy.AllowPrivate): a server there cannot reflect
// anything else, so such a network's peers can only meet there. Servers
// named by a public address or a host name keep private candidates
// refused.
func serversScope(urls []string) (loopback, private bool) {
	loopback, private = len(urls) > 0, len(urls) > 0
	for _, u := range urls {
		uri, err := stun.ParseURI(u)
		if err != nil {
			return false, false
		}
		a, err := netip.ParseAddr(uri.Host)
		if err != nil {
			return false, false
		}
		loopback = loopback && a.IsLoopback()
		private = private && (a.IsLoopback() || a.IsPrivate())
	}
	return loopback, private
}

// RelayConfig assembles the relay role (STUN and TURN, see package relay).
type RelayConfig struct {
	// DataDir holds the credential secret (RelaySecretFile, created with
	// 32 random bytes and mode 0600 on first start).
	DataDir string
	// UDP, TCP and TLS are the listen addresses; empty disables one.
	UDP, TCP, TLS string
	// STUNAlt is the alternate STUN port's listen address
	// (relay.Config.STUNAlt); empty disables it.
	STUNAlt string
	// CertFile and KeyFile serve TURN over TLS.
	CertFile, KeyFile string
	// PublicIP is the address allocations are reachable at.
	PublicIP netip.Addr
	// Bandwidth caps each allocation (bytes/s each way); MaxAllocations
	// bounds them; zero means the relay's defaults.
	Bandwidth, MaxAllocations int
	// AllowPrivate lets a loopback devnet relay to private and loopback
	// addresses, and serve on a private PublicIP.
	AllowPrivate bool
	// Log receives the relay's log.
	Log *slog.Logger
}

// StartRelay starts the relay role. A real network's relay must have a
// public address: a private or loopback PublicIP is refused unless
// AllowPrivate.
func StartRelay(cfg RelayConfig) (*relay.Server, error) {
	if !cfg.PublicIP.IsValid() {
		return nil, errors.New("relay: the public IP is required (--relay.public-ip)")
	}
	if !cfg.AllowPrivate && (cfg.PublicIP.IsLoopback() || cfg.PublicIP.IsPrivate() || cfg.PublicIP.IsUnspecified() || cfg.PublicIP.IsLinkLocalUnicast()) {
		return nil, fmt.Errorf("relay: %s is not a public address (a loopback devnet needs --relay.allow-private)", cfg.PublicIP)
	}
	secret, err := LoadOrCreateRelaySecret(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	rc := relay.Config{
		UDP: cfg.UDP, STUNAlt: cfg.STUNAlt, TCP: cfg.TCP, TLS: cfg.TLS, PublicIP: cfg.PublicIP, Secret: secret,
		Bandwidth: cfg.Bandwidth, MaxAllocations: cfg.MaxAllocations, AllowPrivatePeers: cfg.AllowPrivate, Logger: cfg.Log,
	}
	if cfg.TLS != "" {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, errors.New("relay: TURN over TLS needs --tls.cert and --tls.key")
		}
		// The hermes's reloading certificate files serve the relay too.
		cf, err := hermes.LoadCertFiles(cfg.CertFile, cfg.KeyFile, cfg.Log)
		if err != nil {
			return nil, err
		}
		rc.TLSConfig = cf.TLSConfig()
	}
	return relay.Start(rc)
}

// RelayCredentials makes TURN credentials for user, valid for ttl, from
// the relay secret in dataDir: what an operator hands to the network's
// nodes.
func RelayCredentials(dataDir, user string, ttl time.Duration) (username, password string, err error) {
	secret, err := readRelaySecret(filepath.Join(dataDir, RelaySecretFile))
	if err != nil {
		return "", "", err
	}
	return relay.Credentials(secret, user, ttl)
}

// LoadOrCreateRelaySecret reads the relay secret in dataDir, creating it
// (32 random bytes, mode 0600) on first use.
func LoadOrCreateRelaySecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, RelaySecretFile)
	if b, err := readRelaySecret(path); err == nil {
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("relay: secret: %w", err)
	}
	if err := atomicfile.Create(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("relay: create secret: %w", err)
	}
	return b, nil
}

func readRelaySecret(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("relay: secret: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("relay: secret %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay: secret: %w", err)
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("relay: secret %s is %d bytes, want at least 16", path, len(b))
	}
	return b, nil
}

// RunRelay runs the relay role (StartRelay) until ctx ends, telling out
// where it listens and the STUN URLs a network file lists for it.
func RunRelay(ctx context.Context, cfg RelayConfig, out io.Writer) error {
	s, err := StartRelay(cfg)
	if err != nil {
		return err
	}
	ad := s.Addrs()
	fmt.Fprintf(out, "relay running\n  stun/turn udp: %v\n  stun alt udp:  %v\n  turn tcp:      %v\n  turn tls:      %v\n  public ip:     %s\n",
		ad.UDP, ad.STUNAlt, ad.TCP, ad.TLS, cfg.PublicIP)
	if urls := RelaySTUNURLs(cfg.PublicIP, ad); len(urls) > 0 {
		fmt.Fprintf(out, "  network file:  [nat] stun = [\"%s\"]\n", strings.Join(urls, "\", \""))
	}
	<-ctx.Done()
	return s.Close()
}

// RelaySTUNURLs are the STUN URLs of a relay at public IP ip listening on
// ad: its UDP port and its alternate STUN port, the two destinations
// that tell a node's NAT mapping (docs/reachability.md).
func RelaySTUNURLs(ip netip.Addr, ad relay.Addrs) []string {
	var out []string
	for _, p := range []netip.AddrPort{ad.UDP, ad.STUNAlt} {
		if p.IsValid() {
			out = append(out, "stun:"+netip.AddrPortFrom(ip, p.Port()).String())
		}
	}
	return out
}
