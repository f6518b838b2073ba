package tunnel

import (
	"bufio"
	"fmt"
	"github.com/openmyst/openmyst/tunnel/connbind"
	"strconv"
	"strings"
	"time"
)

// DeviceUAPI renders the device part of a wireguard-go UAPI "set"
// configuration: private key and listen port (0 picks a free port).
func DeviceUAPI(priv PrivateKey, listenPort uint16) string {
	return fmt.Sprintf("private_key=%s\nlisten_port=%d\n", priv.Hex(), listenPort)
}

// PeerUAPI renders the UAPI "set" lines that add or update peer p,
// replacing its allowed IPs.
func PeerUAPI(p PeerConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "public_key=%s\n", p.PublicKey.Hex())
	switch {
	case p.Conn != nil:
		fmt.Fprintf(&b, "endpoint=%s\n", connbind.EndpointOf(p.PublicKey.Hex()))
	case p.Endpoint.IsValid():
		fmt.Fprintf(&b, "endpoint=%s\n", p.Endpoint)
	}
	fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(p.PersistentKeepalive/time.Second))
	b.WriteString("replace_allowed_ips=true\n")
	for _, pfx := range p.AllowedIPs {
		fmt.Fprintf(&b, "allowed_ip=%s\n", pfx)
	}
	return b.String()
}

// RemovePeerUAPI renders the UAPI "set" lines that remove a peer.
func RemovePeerUAPI(pub PublicKey) string {
	return fmt.Sprintf("public_key=%s\nremove=true\n", pub.Hex())
}

// ParseUAPIStats parses the output of wireguard-go's device.IpcGet (UAPI
// "get") into per-peer counters. It validates every counter it reads and
// ignores keys it does not need.
func ParseUAPIStats(get string) (map[PublicKey]PeerStats, error) {
	out := map[PublicKey]PeerStats{}
	var cur *PublicKey
	var st PeerStats
	var hsSec, hsNsec int64
	flush := func() {
		if cur != nil {
			if hsSec != 0 || hsNsec != 0 {
				st.LastHandshake = time.Unix(hsSec, hsNsec)
			}
			out[*cur] = st
		}
	}
	sc := bufio.NewScanner(strings.NewReader(get))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("uapi get: line %q has no '='", line)
		}
		var err error
		switch k {
		case "public_key":
			flush()
			pk, perr := ParsePublicKeyHex(v)
			if perr != nil {
				return nil, fmt.Errorf("uapi get: %w", perr)
			}
			if _, dup := out[pk]; dup {
				return nil, fmt.Errorf("uapi get: duplicate peer %s", pk)
			}
			cur, st, hsSec, hsNsec = &pk, PeerStats{}, 0, 0
		case "rx_bytes":
			st.RxBytes, err = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			st.TxBytes, err = strconv.ParseUint(v, 10, 64)
		case "last_handshake_time_sec":
			hsSec, err = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			hsNsec, err = strconv.ParseInt(v, 10, 64)
			if err == nil && (hsNsec < 0 || hsNsec >= 1e9) {
				err = fmt.Errorf("out of range")
			}
		case "errno":
			if v != "0" {
				return nil, fmt.Errorf("uapi get: errno=%s", v)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("uapi get: %s=%q: %w", k, v, err)
		}
		if cur == nil && (k == "rx_bytes" || k == "tx_bytes" || strings.HasPrefix(k, "last_handshake")) {
			return nil, fmt.Errorf("uapi get: %s before any public_key", k)
		}
	}
	flush()
	return out, nil
}
