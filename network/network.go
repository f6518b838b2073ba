package network

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pion/stun/v3"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/atomicfile"
)

// Limits on a definition (it is read from files others hand out).
const (
	// MaxFileSize is the largest network file Load reads.
	MaxFileSize = 64 << 10
	// MaxEntries bounds every list (RPC URLs, hermes hubs, peers, servers).
	MaxEntries = 32
	// MaxConfirmations bounds Confirmations.
	MaxConfirmations = 1000
)

// Dir is the directory inside the data dir that holds named networks.
const Dir = "networks"

// Ext is the extension of network files.
const Ext = ".toml"

// Hermes is one payment hub of the network.
type Hermes struct {
	// URL is its HTTP API.
	URL string
	// Operator is its operator key address.
	Operator common.Address
	// Contract is its hermes contract (the CREATE2 address of Operator
	// under the deployment's registry).
	Contract common.Address
}

// Network is one decoded, validated network definition.
type Network struct {
	// Name names the network (lower-case letters, digits, '-', '_', '.').
	Name string
	// ChainID is the EVM chain the contracts live on.
	ChainID uint64
	// RPC are the chain's JSON-RPC endpoints, preferred first.
	RPC []string
	// Confirmations is how many blocks nodes wait on top of a chain event
	// before acting on it; nil: the node's default (0 on dev chains, 12
	// otherwise).
	Confirmations *uint64
	// Deployment is the contract deployment; its Hermes and HermesOperator
	// are the first hermes's.
	Deployment chain.Deployment
	// Hermes are the network's hermes hubs, the default first.
	Hermes []Hermes
	// TransactorURL is the transactor's API ("" if the network has none).
	TransactorURL string
	// Bootstrap are the libp2p bootstrap peers (multiaddrs with /p2p/ID).
	Bootstrap []string
	// Relays are libp2p circuit relay peers (multiaddrs with /p2p/ID).
	Relays []string
	// STUN are STUN server URIs (stun:host:port; not stuns:, which the
	// nodes' ICE agents do not speak).
	STUN []string
	// TURN are TURN server URIs (turn:host:port?transport=udp|tcp,
	// turns:host:port); credentials are the node's own configuration.
	TURN []string
}

// Dev reports whether the network runs on a local development chain (see
// chain.IsDevChainID): only then are devnet shortcuts allowed.
func (n *Network) Dev() bool { return chain.IsDevChainID(n.ChainID) }

// HermesContracts are the hermes contracts of the network, default first.
func (n *Network) HermesContracts() []common.Address {
	out := make([]common.Address, len(n.Hermes))
	for i, h := range n.Hermes {
		out[i] = h.Contract
	}
	return out
}

// fileFormat is the TOML layout (see docs/network.md).
type fileFormat struct {
	Name          string         `toml:"name"`
	ChainID       uint64         `toml:"chain_id"`
	RPC           []string       `toml:"rpc"`
	Confirmations *uint64        `toml:"confirmations,omitempty"`
	TransactorURL string         `toml:"transactor_url,omitempty"`
	Deployment    fileDeployment `toml:"deployment"`
	Hermes        []fileHermes   `toml:"hermes"`
	P2P           fileP2P        `toml:"p2p"`
	NAT           *fileNAT       `toml:"nat,omitempty"`
}

type fileDeployment struct {
	Token                 string `toml:"token"`
	Registry              string `toml:"registry"`
	ChannelImplementation string `toml:"channel_implementation"`
	HermesImplementation  string `toml:"hermes_implementation"`
	StartBlock            uint64 `toml:"start_block"`
	Faucet                bool   `toml:"faucet,omitempty"`
}

type fileHermes struct {
	URL      string `toml:"url"`
	Operator string `toml:"operator"`
	Contract string `toml:"contract,omitempty"`
}

type fileP2P struct {
	Bootstrap []string `toml:"bootstrap"`
	Relays    []string `toml:"relays,omitempty"`
}

type fileNAT struct {
	STUN []string `toml:"stun,omitempty"`
	TURN []string `toml:"turn,omitempty"`
}

// required are the keys a definition must carry.
var required = []string{
	"name", "chain_id", "rpc",
	"deployment", "deployment.token", "deployment.registry", "deployment.channel_implementation",
	"deployment.hermes_implementation", "deployment.start_block",
	"hermes", "p2p", "p2p.bootstrap",
}

// Decode parses and validates a network definition. Unknown keys, missing
// required keys, wrong types and invalid values are errors naming the key.
func Decode(data []byte) (*Network, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("network: definition is %d bytes, more than %d", len(data), MaxFileSize)
	}
	var f fileFormat
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("network: unknown keys %s", strings.Join(keys, ", "))
	}
	var missing []string
	for _, k := range required {
		if !md.IsDefined(strings.Split(k, ".")...) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("network: missing keys %s", strings.Join(missing, ", "))
	}
	return f.network()
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// network validates f and converts it.
func (f *fileFormat) network() (*Network, error) {
	n := &Network{Name: f.Name, ChainID: f.ChainID, Confirmations: f.Confirmations, TransactorURL: f.TransactorURL}
	if !nameRE.MatchString(f.Name) {
		return nil, fmt.Errorf("network: name %q: want 1-64 lower-case letters, digits, '.', '-' or '_'", f.Name)
	}
	if f.ChainID == 0 {
		return nil, errors.New("network: chain_id is zero")
	}
	dev := chain.IsDevChainID(f.ChainID)
	if err := checkList("rpc", f.RPC, 1, func(s string) error {
		if strings.ContainsAny(s, ", \t\r\n") {
			// --chain.rpc carries the list comma-separated.
			return fmt.Errorf("%q: commas and blanks do not belong in an RPC URL", s)
		}
		return checkURL(s, dev, "http", "https", "ws", "wss")
	}); err != nil {
		return nil, err
	}
	if err := chain.ValidateRPCURLs(f.RPC); err != nil {
		return nil, fmt.Errorf("network: rpc: %w", err)
	}
	n.RPC = f.RPC
	if f.Confirmations != nil && *f.Confirmations > MaxConfirmations {
		return nil, fmt.Errorf("network: confirmations %d: more than %d", *f.Confirmations, MaxConfirmations)
	}
	if f.TransactorURL != "" {
		if err := checkURL(f.TransactorURL, dev, "http", "https"); err != nil {
			return nil, fmt.Errorf("network: transactor_url: %w", err)
		}
	}
	d := &f.Deployment
	dep := chain.Deployment{ChainID: f.ChainID, DeployBlock: d.StartBlock, Faucet: d.Faucet}
	for _, a := range []struct {
		key string
		s   string
		to  *common.Address
	}{
		{"token", d.Token, &dep.Token}, {"registry", d.Registry, &dep.Registry},
		{"channel_implementation", d.ChannelImplementation, &dep.ChannelImplementation},
		{"hermes_implementation", d.HermesImplementation, &dep.HermesImplementation},
	} {
		addr, err := nonZeroAddress(a.s)
		if err != nil {
			return nil, fmt.Errorf("network: deployment.%s: %w", a.key, err)
		}
		*a.to = addr
	}
	if d.Faucet && !dev {
		return nil, fmt.Errorf("network: deployment.faucet: a mintable dev token on chain %d, which is not a dev chain (%v)", f.ChainID, chain.DevChainIDs)
	}
	if len(f.Hermes) == 0 || len(f.Hermes) > MaxEntries {
		return nil, fmt.Errorf("network: hermes: want 1 to %d [[hermes]] tables, got %d", MaxEntries, len(f.Hermes))
	}
	for i, h := range f.Hermes {
		if err := checkURL(h.URL, dev, "http", "https"); err != nil {
			return nil, fmt.Errorf("network: hermes[%d].url: %w", i, err)
		}
		op, err := nonZeroAddress(h.Operator)
		if err != nil {
			return nil, fmt.Errorf("network: hermes[%d].operator: %w", i, err)
		}
		contract := chain.HermesAddress(dep.Registry, dep.HermesImplementation, op)
		if h.Contract != "" {
			c, err := identity.ParseAddress(h.Contract)
			if err != nil {
				return nil, fmt.Errorf("network: hermes[%d].contract: %w", i, err)
			}
			if c != contract {
				return nil, fmt.Errorf("network: hermes[%d].contract %s is not operator %s's hermes under this registry (%s)", i, c.Hex(), op.Hex(), contract.Hex())
			}
		}
		n.Hermes = append(n.Hermes, Hermes{URL: h.URL, Operator: op, Contract: contract})
	}
	dep.Hermes, dep.HermesOperator = n.Hermes[0].Contract, n.Hermes[0].Operator
	if err := dep.Validate(); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	n.Deployment = dep
	if err := checkList("p2p.bootstrap", f.P2P.Bootstrap, 1, checkPeer); err != nil {
		return nil, err
	}
	if err := checkList("p2p.relays", f.P2P.Relays, 0, checkPeer); err != nil {
		return nil, err
	}
	n.Bootstrap, n.Relays = f.P2P.Bootstrap, orNil(f.P2P.Relays)
	if f.NAT != nil {
		if err := checkList("nat.stun", f.NAT.STUN, 0, checkICE(stun.SchemeTypeSTUN)); err != nil {
			return nil, err
		}
		if err := checkSTUNDestinations(f.NAT.STUN); err != nil {
			return nil, err
		}
		if err := checkList("nat.turn", f.NAT.TURN, 0, checkICE(stun.SchemeTypeTURN, stun.SchemeTypeTURNS)); err != nil {
			return nil, err
		}
		n.STUN, n.TURN = orNil(f.NAT.STUN), orNil(f.NAT.TURN)
	}
	return n, nil
}

// orNil is s, or nil when s is empty (so that an empty list and a missing
// one decode alike).
func orNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func checkList(key string, list []string, least int, check func(string) error) error {
	if len(list) < least || len(list) > MaxEntries {
		return fmt.Errorf("network: %s: want %d to %d entries, got %d", key, least, MaxEntries, len(list))
	}
	seen := map[string]bool{}
	for i, s := range list {
		if seen[s] {
			return fmt.Errorf("network: %s[%d]: %q given twice", key, i, s)
		}
		seen[s] = true
		if err := check(s); err != nil {
			return fmt.Errorf("network: %s[%d]: %w", key, i, err)
		}
	}
	return nil
}

func nonZeroAddress(s string) (common.Address, error) {
	a, err := identity.ParseAddress(s)
	if err != nil {
		return a, err
	}
	if a == (common.Address{}) {
		return a, errors.New("zero address")
	}
	return a, nil
}

// checkURL accepts an absolute URL with one of schemes and a host. Plain
// (unencrypted) schemes are allowed to loopback hosts, or to any host on a
// dev chain.
func checkURL(s string, dev bool, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || u.Scheme == sc
	}
	if !ok || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q: want an absolute %s URL with a host", s, strings.Join(schemes, "/"))
	}
	if u.User != nil {
		return fmt.Errorf("%q: credentials do not belong in a network file", s)
	}
	if (u.Scheme == "http" || u.Scheme == "ws") && !dev && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q: plain %s to a non-loopback host is allowed on dev chains only (use %ss)", s, u.Scheme, u.Scheme)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkPeer(s string) error {
	ai, err := peer.AddrInfoFromString(s)
	if err != nil {
		return fmt.Errorf("%q: want a multiaddr ending in /p2p/PEERID: %w", s, err)
	}
	if len(ai.Addrs) == 0 {
		return fmt.Errorf("%q: no address before /p2p/", s)
	}
	return nil
}

func checkICE(schemes ...stun.SchemeType) func(string) error {
	return func(s string) error {
		u, err := stun.ParseURI(s)
		if err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
		for _, sc := range schemes {
			if u.Scheme == sc {
				if u.Username != "" || u.Password != "" {
					return fmt.Errorf("%q: credentials do not belong in a network file", s)
				}
				return nil
			}
		}
		return fmt.Errorf("%q: want a %v URI", s, schemes)
	}
}

// checkSTUNDestinations refuses two nat.stun entries that name the same
// destination (host and port, 3478 when left out): nodes tell their NAT
// mapping from two destinations' answers (a relay's UDP port and its
// alternate STUN port, or two relays), and a list that names one twice
// only looks like it has two. The entries are valid stun: URIs.
func checkSTUNDestinations(list []string) error {
	seen := map[string]int{}
	for i, s := range list {
		u, err := stun.ParseURI(s)
		if err != nil {
			return fmt.Errorf("network: nat.stun[%d]: %q: %w", i, s, err)
		}
		dest := net.JoinHostPort(strings.ToLower(u.Host), strconv.Itoa(u.Port))
		if j, ok := seen[dest]; ok {
			return fmt.Errorf("network: nat.stun[%d]: %q is the same server as nat.stun[%d] (%s); a second STUN destination is another relay or a relay's alternate STUN port", i, s, j, dest)
		}
		seen[dest] = i
	}
	return nil
}

// Encode renders n as a network file. It validates first: what Encode
// writes, Decode reads back equal.
func (n *Network) Encode() ([]byte, error) {
	f := fileFormat{
		Name: n.Name, ChainID: n.ChainID, RPC: n.RPC, Confirmations: n.Confirmations, TransactorURL: n.TransactorURL,
		Deployment: fileDeployment{
			Token: n.Deployment.Token.Hex(), Registry: n.Deployment.Registry.Hex(),
			ChannelImplementation: n.Deployment.ChannelImplementation.Hex(),
			HermesImplementation:  n.Deployment.HermesImplementation.Hex(),
			StartBlock:            n.Deployment.DeployBlock, Faucet: n.Deployment.Faucet,
		},
		P2P: fileP2P{Bootstrap: n.Bootstrap, Relays: n.Relays},
	}
	if len(n.STUN)+len(n.TURN) > 0 {
		f.NAT = &fileNAT{STUN: n.STUN, TURN: n.TURN}
	}
	for _, h := range n.Hermes {
		f.Hermes = append(f.Hermes, fileHermes{URL: h.URL, Operator: h.Operator.Hex(), Contract: h.Contract.Hex()})
	}
	var buf bytes.Buffer
	buf.WriteString("# openmyst network definition; see docs/network.md\n")
	if err := toml.NewEncoder(&buf).Encode(f); err != nil {
		return nil, fmt.Errorf("network: encode: %w", err)
	}
	if _, err := Decode(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("network: encode %q: %w", n.Name, err)
	}
	return buf.Bytes(), nil
}

// Save writes n to path atomically (temp file, fsync, rename), mode 0644.
func (n *Network) Save(path string) error {
	data, err := n.Encode()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("network: save: %w", err)
	}
	return nil
}

// Load reads and decodes the network file at path.
func Load(path string) (*Network, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("network: read %s: %w", path, err)
	}
	n, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return n, nil
}

// IsPath reports whether ref names a file rather than a network name: it
// holds a path separator or ends in Ext.
func IsPath(ref string) bool {
	return strings.ContainsRune(ref, filepath.Separator) || strings.ContainsRune(ref, '/') || strings.HasSuffix(ref, Ext)
}

// PathOf is where the network called name lives in dataDir.
func PathOf(dataDir, name string) string { return filepath.Join(dataDir, Dir, name+Ext) }

// Resolve loads the network ref names: a file path (see IsPath), else a
// name looked up as <dataDir>/networks/<name>.toml.
func Resolve(dataDir, ref string) (*Network, error) {
	if ref == "" {
		return nil, errors.New("network: empty network reference")
	}
	if IsPath(ref) {
		return Load(ref)
	}
	if !nameRE.MatchString(ref) {
		return nil, fmt.Errorf("network: %q is neither a file nor a network name", ref)
	}
	path := PathOf(dataDir, ref)
	if _, err := os.Stat(path); err != nil {
		known := Names(dataDir)
		return nil, fmt.Errorf("network: no network %q: %s does not exist (known here: %s; no public network is built in — pass a network file)", ref, path, listOrNone(known))
	}
	n, err := Load(path)
	if err != nil {
		return nil, err
	}
	if n.Name != ref {
		return nil, fmt.Errorf("network: %s names network %q, not %q", path, n.Name, ref)
	}
	return n, nil
}

// Names lists the networks saved in dataDir.
func Names(dataDir string) []string {
	m, _ := filepath.Glob(filepath.Join(dataDir, Dir, "*"+Ext))
	out := make([]string, 0, len(m))
	for _, p := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(p), Ext))
	}
	sort.Strings(out)
	return out
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
