package network

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/chain"
)

// validDev is a complete definition of a dev-chain network.
const validDev = `name = "devnet"
chain_id = 1337
rpc = ["http://10.77.0.2:8545"]
confirmations = 0
transactor_url = "http://10.77.0.3:4070"

[deployment]
token = "0x1111111111111111111111111111111111111111"
registry = "0x2222222222222222222222222222222222222222"
channel_implementation = "0x3333333333333333333333333333333333333333"
hermes_implementation = "0x4444444444444444444444444444444444444444"
start_block = 7
faucet = true

[[hermes]]
url = "http://10.77.0.3:4060"
operator = "0x5555555555555555555555555555555555555555"

[p2p]
bootstrap = ["/ip4/10.77.0.4/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]

[nat]
stun = ["stun:10.77.0.5:3478"]
turn = ["turn:10.77.0.5:3478?transport=udp"]
`

// validProd is a definition on a chain that is not a dev chain.
const validProd = `name = "example"
chain_id = 80002
rpc = ["https://rpc.example.org", "https://rpc2.example.org/v3/key"]

[deployment]
token = "0x1111111111111111111111111111111111111111"
registry = "0x2222222222222222222222222222222222222222"
channel_implementation = "0x3333333333333333333333333333333333333333"
hermes_implementation = "0x4444444444444444444444444444444444444444"
start_block = 123456

[[hermes]]
url = "https://hermes.example.org"
operator = "0x5555555555555555555555555555555555555555"

[[hermes]]
url = "https://hermes2.example.org"
operator = "0x6666666666666666666666666666666666666666"

[p2p]
bootstrap = ["/dns4/boot.example.org/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]
relays = ["/ip4/192.0.2.1/udp/4001/quic-v1/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]
`

func TestDecodeValid(t *testing.T) {
	n, err := Decode([]byte(validDev))
	if err != nil {
		t.Fatal(err)
	}
	if !n.Dev() || n.ChainID != 1337 || n.Deployment.DeployBlock != 7 || !n.Deployment.Faucet || *n.Confirmations != 0 {
		t.Fatalf("decoded %+v", n)
	}
	want := chain.HermesAddress(n.Deployment.Registry, n.Deployment.HermesImplementation, n.Hermes[0].Operator)
	if n.Hermes[0].Contract != want || n.Deployment.Hermes != want || n.Deployment.HermesOperator != n.Hermes[0].Operator {
		t.Fatalf("hermes contract %s, deployment %s, want %s", n.Hermes[0].Contract.Hex(), n.Deployment.Hermes.Hex(), want.Hex())
	}
	if err := n.Deployment.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := Decode([]byte(validProd))
	if err != nil {
		t.Fatal(err)
	}
	if p.Dev() || p.Confirmations != nil || len(p.HermesContracts()) != 2 || p.Deployment.Faucet {
		t.Fatalf("decoded %+v", p)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	emptyLists := strings.Replace(strings.Replace(validDev, `turn = ["turn:10.77.0.5:3478?transport=udp"]`, "", 1),
		`stun = ["stun:10.77.0.5:3478"]`, "stun = []", 1) + "\n"
	emptyLists = strings.Replace(emptyLists, "[p2p]\n", "[p2p]\nrelays = []\n", 1)
	for _, src := range []string{validDev, validProd, emptyLists} {
		n, err := Decode([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		data, err := n.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(data)
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if !reflect.DeepEqual(n, back) {
			t.Fatalf("round trip changed the network:\n%+v\n%+v", n, back)
		}
	}
}

// TestDecodeRejects: every kind of bad input is refused with an error that
// names what is wrong.
func TestDecodeRejects(t *testing.T) {
	dev, prod := validDev, validProd
	cases := []struct {
		name, src, want string
	}{
		{"unknown top key", "extra = 1\n" + dev, "unknown keys extra"},
		{"unknown key in a table", dev + "\nextra = 1\n", "unknown keys nat.extra"},
		{"unknown nested key", strings.Replace(dev, "start_block = 7", "start_block = 7\nfaucett = true", 1), "unknown keys deployment.faucett"},
		{"missing rpc", strings.Replace(dev, `rpc = ["http://10.77.0.2:8545"]`, "", 1), "missing keys rpc"},
		{"missing bootstrap", strings.Replace(dev, "[p2p]\nbootstrap", "[p2p]\nrelays", 1), "missing keys p2p.bootstrap"},
		{"missing hermes", strings.Replace(prod, "[[hermes]]", "[[other]]", -1), "unknown keys"},
		{"wrong type", strings.Replace(dev, "chain_id = 1337", `chain_id = "1337"`, 1), "chain_id"},
		{"zero chain", strings.Replace(dev, "chain_id = 1337", "chain_id = 0", 1), "chain_id is zero"},
		{"bad name", strings.Replace(dev, `name = "devnet"`, `name = "Dev Net"`, 1), "name"},
		{"faucet off a dev chain", strings.Replace(prod, "start_block = 123456", "start_block = 1\nfaucet = true", 1), "deployment.faucet"},
		{"plain http rpc off a dev chain", strings.Replace(prod, "https://rpc.example.org", "http://rpc.example.org", 1), "rpc[0]"},
		{"plain http hermes off a dev chain", strings.Replace(prod, "https://hermes2.example.org", "http://hermes2.example.org", 1), "hermes[1].url"},
		{"credentials in url", strings.Replace(prod, "https://rpc.example.org", "https://user:pw@rpc.example.org", 1), "credentials"},
		{"relative url", strings.Replace(prod, "https://rpc.example.org", "rpc.example.org", 1), "rpc[0]"},
		{"ws rpc among several", strings.Replace(prod, "https://rpc2.example.org/v3/key", "wss://ws.example.org", 1), "http(s)"},
		{"comma in rpc", strings.Replace(prod, "https://rpc2.example.org/v3/key", "https://rpc2.example.org/a,b", 1), "commas"},
		{"zero token", strings.Replace(dev, "0x1111111111111111111111111111111111111111", "0x0000000000000000000000000000000000000000", 1), "deployment.token: zero address"},
		{"bad address", strings.Replace(dev, "0x2222222222222222222222222222222222222222", "0x22", 1), "deployment.registry"},
		{"bad checksum", strings.Replace(dev, "0x3333333333333333333333333333333333333333", "0xaAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1), "checksum"},
		{"hermes without operator", strings.Replace(dev, `operator = "0x5555555555555555555555555555555555555555"`, "", 1), "hermes[0].operator"},
		{"hermes contract not the operator's", strings.Replace(dev, `operator = "0x5555555555555555555555555555555555555555"`, `operator = "0x5555555555555555555555555555555555555555"`+"\ncontract = \"0x7777777777777777777777777777777777777777\"", 1), "is not operator"},
		{"bootstrap without peer id", strings.Replace(dev, "/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN", "", 1), "p2p.bootstrap[0]"},
		{"empty bootstrap", strings.Replace(dev, `bootstrap = ["/ip4/10.77.0.4/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]`, "bootstrap = []", 1), "p2p.bootstrap: want 1"},
		{"duplicate peer", strings.Replace(dev, `bootstrap = ["/ip4/10.77.0.4/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]`, `bootstrap = ["/ip4/10.77.0.4/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN", "/ip4/10.77.0.4/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"]`, 1), "given twice"},
		{"turn in stun list", strings.Replace(dev, `stun = ["stun:10.77.0.5:3478"]`, `stun = ["turn:10.77.0.5:3478"]`, 1), "nat.stun[0]"},
		{"stuns (ICE agents speak plain stun: only)", strings.Replace(dev, `stun:10.77.0.5:3478`, `stuns:10.77.0.5:5349`, 1), "nat.stun[0]"},
		{"one STUN destination twice", strings.Replace(dev, `stun = ["stun:10.77.0.5:3478"]`, `stun = ["stun:10.77.0.5:3478", "stun:10.77.0.5"]`, 1), "same server as nat.stun[0]"},
		{"turn credentials", strings.Replace(dev, `turn:10.77.0.5:3478?transport=udp`, `turn:u:p@10.77.0.5:3478`, 1), "nat.turn[0]"},
		{"too many confirmations", strings.Replace(dev, "confirmations = 0", "confirmations = 100000", 1), "confirmations"},
		{"not toml", "{", "network:"},
		{"too large", dev + "#" + strings.Repeat("x", MaxFileSize), "more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.src == dev || c.src == prod {
				t.Fatal("case did not change the source")
			}
			_, err := Decode([]byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	n, err := Decode([]byte(validDev))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(dir, "devnet"); err == nil || !strings.Contains(err.Error(), "no network \"devnet\"") || !strings.Contains(err.Error(), "known here: none") {
		t.Fatalf("unsaved name: %v", err)
	}
	if err := n.Save(PathOf(dir, "devnet")); err != nil {
		t.Fatal(err)
	}
	byName, err := Resolve(dir, "devnet")
	if err != nil || !reflect.DeepEqual(byName, n) {
		t.Fatalf("by name: %v %+v", err, byName)
	}
	byPath, err := Resolve("/nonexistent", PathOf(dir, "devnet"))
	if err != nil || !reflect.DeepEqual(byPath, n) {
		t.Fatalf("by path: %v", err)
	}
	if got := Names(dir); !reflect.DeepEqual(got, []string{"devnet"}) {
		t.Fatalf("names %v", got)
	}
	// A file saved under another name is refused by name.
	if err := os.Rename(PathOf(dir, "devnet"), PathOf(dir, "other")); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(dir, "other"); err == nil || !strings.Contains(err.Error(), `names network "devnet"`) {
		t.Fatalf("misnamed: %v", err)
	}
	if _, err := Resolve(dir, "../x"); err == nil {
		t.Fatal("path-like name accepted")
	}
	if _, err := Resolve(dir, "Bad Name"); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// oneRelayTwoPorts lists one relay's two STUN destinations: its UDP port
// and its alternate STUN port (myst relay --relay.stun-alt).
const oneRelayTwoPorts = `stun = ["stun:10.77.0.5:3478", "stun:10.77.0.5:3479"]`

// TestDecodeOneRelayTwoPorts: a network with one relay lists its two
// STUN ports, which every node then gets (--ice.server).
func TestDecodeOneRelayTwoPorts(t *testing.T) {
	n, err := Decode([]byte(strings.Replace(validDev, `stun = ["stun:10.77.0.5:3478"]`, oneRelayTwoPorts, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"stun:10.77.0.5:3478", "stun:10.77.0.5:3479"}; !reflect.DeepEqual(n.STUN, want) {
		t.Fatalf("stun %v, want %v", n.STUN, want)
	}
	if got := FlagValues(n, false, false)[ICEServerFlag]; got != "stun:10.77.0.5:3478,stun:10.77.0.5:3479" {
		t.Fatalf("--%s %q", ICEServerFlag, got)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encodes to a
// file that decodes to the same network.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(validDev))
	f.Add([]byte(validProd))
	f.Add([]byte(strings.Replace(validProd, "https://rpc", "http://rpc", 1)))
	f.Add([]byte("name = \"x\"\n"))
	f.Add([]byte(strings.Replace(validDev, `turn = ["turn:10.77.0.5:3478?transport=udp"]`, "turn = []\nstun = []", 1)))
	f.Add([]byte(strings.Replace(validDev, `stun = ["stun:10.77.0.5:3478"]`, "", 1) + "\n[p2p.x]\n"))
	f.Add([]byte(strings.Replace(validDev, `stun = ["stun:10.77.0.5:3478"]`, oneRelayTwoPorts, 1)))
	f.Add([]byte(strings.Replace(validDev, `stun = ["stun:10.77.0.5:3478"]`, `stun = ["stun:10.77.0.5", "stun:10.77.0.5:3478"]`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Decode(data)
		if err != nil {
			return
		}
		enc, err := n.Encode()
		if err != nil {
			t.Fatalf("accepted network does not encode: %v", err)
		}
		back, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(n, back) {
			t.Fatalf("round trip: %v\n%s", err, enc)
		}
		if !bytes.HasPrefix(enc, []byte("#")) {
			t.Fatal("no header")
		}
	})
}
