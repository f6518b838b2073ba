package tunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// SessionConfig is everything a consumer needs to bring a tunnel up: its
// own key and addresses and the provider peer. It maps one to one onto a
// wg-quick configuration file.
type SessionConfig struct {
	PrivateKey          PrivateKey     // consumer's key for this session
	Addresses           []netip.Prefix // consumer's tunnel addresses
	DNS                 []netip.Addr   // resolvers reached through the tunnel
	MTU                 int            // 0: tool default
	PeerPublicKey       PublicKey      // provider's device key
	Endpoint            netip.AddrPort // provider's UDP endpoint
	AllowedIPs          []netip.Prefix // what goes through the tunnel, usually 0.0.0.0/0, ::/0
	PersistentKeepalive time.Duration  // 0: off
}

// FullTunnel is the AllowedIPs of a consumer that sends everything through
// the tunnel.
func FullTunnel() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
}

// Validate checks that c is complete and in range.
func (c SessionConfig) Validate() error {
	switch {
	case c.PrivateKey.IsZero():
		return fmt.Errorf("session config: missing private key")
	case len(c.Addresses) == 0:
		return fmt.Errorf("session config: missing address")
	case c.PeerPublicKey.IsZero():
		return fmt.Errorf("session config: missing peer public key")
	case !c.Endpoint.IsValid() || c.Endpoint.Port() == 0:
		return fmt.Errorf("session config: missing or invalid endpoint")
	case len(c.AllowedIPs) == 0:
		return fmt.Errorf("session config: missing allowed IPs")
	case c.MTU != 0 && (c.MTU < 1280 || c.MTU > 9000):
		return fmt.Errorf("session config: MTU %d out of range 1280-9000", c.MTU)
	case c.PersistentKeepalive < 0 || c.PersistentKeepalive > 65535*time.Second || c.PersistentKeepalive%time.Second != 0:
		return fmt.Errorf("session config: keepalive %v must be whole seconds in 0-65535", c.PersistentKeepalive)
	}
	for _, p := range append(append([]netip.Prefix(nil), c.Addresses...), c.AllowedIPs...) {
		if !p.IsValid() {
			return fmt.Errorf("session config: invalid prefix")
		}
	}
	for _, d := range c.DNS {
		if !d.IsValid() {
			return fmt.Errorf("session config: invalid DNS address")
		}
	}
	return nil
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// WGQuick renders c as a wg-quick(8) configuration file. The output holds
// the private key: write it with mode 0600 and never log it.
func (c SessionConfig) WGQuick() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", c.PrivateKey)
	fmt.Fprintf(&b, "Address = %s\n", joinPrefixes(c.Addresses))
	if len(c.DNS) > 0 {
		s := make([]string, len(c.DNS))
		for i, d := range c.DNS {
			s[i] = d.String()
		}
		fmt.Fprintf(&b, "DNS = %s\n", strings.Join(s, ", "))
	}
	if c.MTU != 0 {
		fmt.Fprintf(&b, "MTU = %d\n", c.MTU)
	}
	b.WriteString("\n[Peer]\n")
	fmt.Fprintf(&b, "PublicKey = %s\n", c.PeerPublicKey)
	fmt.Fprintf(&b, "Endpoint = %s\n", c.Endpoint)
	fmt.Fprintf(&b, "AllowedIPs = %s\n", joinPrefixes(c.AllowedIPs))
	if c.PersistentKeepalive != 0 {
		fmt.Fprintf(&b, "PersistentKeepalive = %d\n", int(c.PersistentKeepalive/time.Second))
	}
	return b.Bytes(), nil
}

// MaxWGQuickSize bounds the input ParseWGQuick accepts.
const MaxWGQuickSize = 64 << 10

// ParseWGQuick parses a wg-quick configuration with exactly one [Interface]
// and one [Peer] section. It is strict: unknown sections or keys (including
// wg-quick's PostUp/PreDown hooks, which would run commands), duplicate
// single-valued keys, missing required keys, hostnames in Endpoint and
// out-of-range numbers are rejected with a reason. Keys are matched
// case-insensitively like wg(8); '#' starts a comment.
func ParseWGQuick(data []byte) (SessionConfig, error) {
	var c SessionConfig
	if len(data) > MaxWGQuickSize {
		return c, fmt.Errorf("wg-quick: config larger than %d bytes", MaxWGQuickSize)
	}
	section := ""
	seenSection := map[string]bool{}
	seenKey := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			name := strings.ToLower(line)
			if name != "[interface]" && name != "[peer]" {
				return SessionConfig{}, fmt.Errorf("wg-quick line %d: unknown section %q", lineNo, line)
			}
			if seenSection[name] {
				return SessionConfig{}, fmt.Errorf("wg-quick line %d: only one %s section is supported", lineNo, line)
			}
			seenSection[name] = true
			section = name
			continue
		}
		if section == "" {
			return SessionConfig{}, fmt.Errorf("wg-quick line %d: key outside a section", lineNo)
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return SessionConfig{}, fmt.Errorf("wg-quick line %d: want Key = Value", lineNo)
		}
		key := strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if v == "" {
			return SessionConfig{}, fmt.Errorf("wg-quick line %d: empty value for %s", lineNo, key)
		}
		full := section + key
		multi := key == "address" || key == "dns" || key == "allowedips"
		if seenKey[full] && !multi {
			return SessionConfig{}, fmt.Errorf("wg-quick line %d: duplicate %s", lineNo, k)
		}
		seenKey[full] = true
		if err := c.setKey(section, key, v); err != nil {
			return SessionConfig{}, fmt.Errorf("wg-quick line %d: %w", lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return SessionConfig{}, fmt.Errorf("wg-quick: %w", err)
	}
	if !seenSection["[interface]"] || !seenSection["[peer]"] {
		return SessionConfig{}, fmt.Errorf("wg-quick: need one [Interface] and one [Peer] section")
	}
	if err := c.Validate(); err != nil {
		return SessionConfig{}, fmt.Errorf("wg-quick: %w", err)
	}
	return c, nil
}

func splitList(v string) []string {
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// appendPrefixes appends the comma-separated prefixes (or addresses) of
// v to ps; key names the setting in errors.
func appendPrefixes(ps []netip.Prefix, v, key string) ([]netip.Prefix, error) {
	for _, s := range splitList(v) {
		p, err := parsePrefixOrAddr(s)
		if err != nil {
			return ps, fmt.Errorf("%s: %w", key, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (c *SessionConfig) setKey(section, key, v string) error {
	var err error
	switch section + key {
	case "[interface]privatekey":
		c.PrivateKey, err = ParsePrivateKey(v)
	case "[interface]address":
		c.Addresses, err = appendPrefixes(c.Addresses, v, "address")
	case "[interface]dns":
		for _, s := range splitList(v) {
			a, perr := netip.ParseAddr(s)
			if perr != nil {
				return fmt.Errorf("DNS: only IP addresses are supported: %w", perr)
			}
			c.DNS = append(c.DNS, a)
		}
	case "[interface]mtu":
		n, perr := strconv.ParseUint(v, 10, 16)
		if perr != nil || n < 1280 || n > 9000 {
			return fmt.Errorf("MTU %q out of range 1280-9000", v)
		}
		c.MTU = int(n)
	case "[peer]publickey":
		c.PeerPublicKey, err = ParsePublicKey(v)
	case "[peer]endpoint":
		ap, perr := netip.ParseAddrPort(v)
		if perr != nil {
			return fmt.Errorf("endpoint must be IP:port: %w", perr)
		}
		if ap.Port() == 0 || ap.Addr().Zone() != "" {
			return fmt.Errorf("endpoint %q: need a port and no zone", v)
		}
		c.Endpoint = ap
	case "[peer]allowedips":
		c.AllowedIPs, err = appendPrefixes(c.AllowedIPs, v, "AllowedIPs")
	case "[peer]persistentkeepalive":
		if v == "off" {
			c.PersistentKeepalive = 0
			return nil
		}
		n, perr := strconv.ParseUint(v, 10, 16)
		if perr != nil {
			return fmt.Errorf("PersistentKeepalive %q: want 0-65535 or off", v)
		}
		c.PersistentKeepalive = time.Duration(n) * time.Second
	default:
		return fmt.Errorf("unsupported key %q in %s", key, section)
	}
	return err
}
