package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/network"
)

// testLocal is a Local over a fresh data dir with no daemon (nothing
// listens on port 1) and a prompt that records what it was asked.
func testLocal(t *testing.T, asked *[]string, answer string) *Local {
	t.Helper()
	t.Setenv(PassphraseEnv, "")
	return &Local{DataDir: t.TempDir(), LightScrypt: true, TequilapiURL: "http://127.0.0.1:1",
		Prompt: func(p string, confirm bool) (string, error) {
			*asked = append(*asked, p)
			return answer, nil
		}}
}

// TestLocalDeploymentPrecedence: an explicit file beats the network's
// deployment, which beats <data-dir>/chain/deployment.json.
func TestLocalDeploymentPrecedence(t *testing.T) {
	l := &Local{DataDir: "/d"}
	var cc ChainConfig
	l.Deployment(&cc, "")
	if cc.Deployment != "/d/chain/deployment.json" || cc.Deployed != nil {
		t.Fatalf("default: %+v", cc)
	}
	l.Network = &network.Network{Deployment: chain.Deployment{ChainID: 80002}}
	cc = ChainConfig{}
	l.Deployment(&cc, "")
	if cc.Deployed == nil || cc.Deployed.ChainID != 80002 || cc.Deployment != "" {
		t.Fatalf("network: %+v", cc)
	}
	cc = ChainConfig{}
	l.Deployment(&cc, "/x.json")
	if cc.Deployment != "/x.json" || cc.Deployed != nil {
		t.Fatalf("explicit: %+v", cc)
	}
}

// TestLocalChainConfigNamesTheHermesFlag: a bad hermes address is refused
// naming the flag it came from.
func TestLocalChainConfigNamesTheHermesFlag(t *testing.T) {
	l := &Local{DataDir: t.TempDir()}
	if _, err := l.ChainConfig(ChainFlags{Hermes: "0xnope", HermesFlag: "chain.hermes"}); err == nil || !strings.Contains(err.Error(), "--chain.hermes") {
		t.Fatalf("err = %v", err)
	}
	if _, err := l.ChainConfig(ChainFlags{Hermes: "0xnope"}); err == nil || !strings.Contains(err.Error(), "--hermes:") {
		t.Fatalf("default flag name: %v", err)
	}
	h := common.HexToAddress("0x1111111111111111111111111111111111111111")
	cfg, err := l.ChainConfig(ChainFlags{RPC: "http://r", Hermes: h.Hex(), TransactorKeyFile: "k"})
	if err != nil || cfg.Hermes != h || cfg.RPC != "http://r" || cfg.TransactorKeyFile != "k" {
		t.Fatalf("cfg %+v, %v", cfg, err)
	}
}

// TestLocalPassphraseOrder: a file, then $MYST_PASSPHRASE, then the
// prompt; without a prompt a clear error.
func TestLocalPassphraseOrder(t *testing.T) {
	var asked []string
	l := testLocal(t, &asked, "typed")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := l.Passphrase(file, "P", false); pw != "fromfile" || err != nil {
		t.Fatalf("file: %q %v", pw, err)
	}
	t.Setenv(PassphraseEnv, "fromenv")
	if pw, err := l.Passphrase("", "P", false); pw != "fromenv" || err != nil {
		t.Fatalf("env: %q %v", pw, err)
	}
	t.Setenv(PassphraseEnv, "")
	if pw, err := l.Passphrase("", "P", true); pw != "typed" || err != nil || len(asked) != 1 {
		t.Fatalf("prompt: %q %v %v", pw, err, asked)
	}
	l.Prompt = nil
	if _, err := l.Passphrase("", "P", false); err == nil || !strings.Contains(err.Error(), "--passphrase-file") {
		t.Fatalf("no prompt: %v", err)
	}
}

// TestLocalIdentitiesWithoutDaemon: with no daemon the keystore is used
// directly; the default identity resolves, a locked identity is unlocked
// with the prompt (asked once) and signs, and an unlocked one asks
// nothing.
func TestLocalIdentitiesWithoutDaemon(t *testing.T) {
	ctx := context.Background()
	var asked []string
	l := testLocal(t, &asked, "pw")
	if _, err := l.IdentityOf(ctx, "", nil); err == nil || !strings.Contains(err.Error(), "no default identity") {
		t.Fatalf("empty keystore: %v", err)
	}
	var created common.Address
	err := l.WithIdentities(ctx, true, func(api IdentityAPI) error {
		dto, err := api.CreateIdentity(ctx, "pw", true)
		created = common.HexToAddress(dto.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.IdentityOf(ctx, "", nil)
	if err != nil || got != created {
		t.Fatalf("default identity %s, %v; want %s", got.Hex(), err, created.Hex())
	}
	if addrs, err := l.KeystoreAddresses(ctx); err != nil || len(addrs) != 1 || addrs[0] != created.Hex() {
		t.Fatalf("keystore addresses %v, %v", addrs, err)
	}
	if _, err := l.IdentityOf(ctx, "0xbad", nil); err == nil {
		t.Fatal("bad --identity accepted")
	}
	err = l.WithSigner(ctx, created, "", func(s identity.Signer) error {
		if s.Address() != created {
			return errors.New("wrong signer")
		}
		return nil
	})
	if err != nil || len(asked) != 1 || !strings.Contains(asked[0], created.Hex()) {
		t.Fatalf("signer: %v, asked %v", err, asked)
	}
}

// TestLocalNoDaemon: Daemon reports client.ErrNoDaemon without a password
// file.
func TestLocalNoDaemon(t *testing.T) {
	l := &Local{DataDir: t.TempDir(), TequilapiURL: "http://127.0.0.1:1"}
	if _, err := l.Daemon(context.Background()); err == nil {
		t.Fatal("a daemon answered")
	}
}

// TestLocalIdentityCommands: create (passphrase asked twice through the
// prompt), export to a new 0600 file (never over an existing one),
// import into another data dir keeping the address, and sign there.
func TestLocalIdentityCommands(t *testing.T) {
	ctx := context.Background()
	var asked []string
	l := testLocal(t, &asked, "pw")
	confirmed := false
	l.Prompt = func(p string, confirm bool) (string, error) {
		asked, confirmed = append(asked, p), confirmed || confirm
		return "pw", nil
	}
	dto, err := l.CreateIdentity(ctx, "", true)
	if err != nil || !dto.Default || !confirmed {
		t.Fatalf("create: %+v %v (confirmed %v)", dto, err, confirmed)
	}
	addr := common.HexToAddress(dto.ID)
	out := filepath.Join(t.TempDir(), "key.json")
	if data, err := l.ExportIdentity(addr, out); err != nil || data != nil {
		t.Fatalf("export to file: %v", err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("exported file: %v %v", st, err)
	}
	if _, err := l.ExportIdentity(addr, out); err == nil {
		t.Fatal("export overwrote an existing file")
	}
	other := testLocal(t, &asked, "pw")
	got, err := other.ImportIdentity(ctx, out, "")
	if err != nil || got != addr {
		t.Fatalf("import: %s %v, want %s", got.Hex(), err, addr.Hex())
	}
	sig, err := other.Sign(ctx, addr, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.Verify(addr, []byte("hello"), sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if _, err := other.ImportIdentity(ctx, filepath.Join(t.TempDir(), "none.json"), ""); err == nil || !strings.Contains(err.Error(), "read key file") {
		t.Fatalf("missing key file: %v", err)
	}
}

// TestLocalWithoutDaemonReadsTheDataDir: with no daemon, the proposals
// come from a short-lived node (which has no quality scores: a quality
// sort says so) and the settlements from the provider database.
func TestLocalWithoutDaemonReadsTheDataDir(t *testing.T) {
	ctx := context.Background()
	l := &Local{DataDir: t.TempDir(), TequilapiURL: "http://127.0.0.1:1"}
	var note strings.Builder
	_, err := l.Proposals(ctx, ProposalsQuery{Filter: market.Filter{Sort: market.SortQuality}}, &note)
	if err == nil || !strings.Contains(err.Error(), "--wait") || !strings.Contains(note.String(), "no quality scores") {
		t.Fatalf("proposals: %v, note %q", err, note.String())
	}
	if list, err := l.Settlements(ctx); err != nil || len(list) != 0 {
		t.Fatalf("settlements of a fresh provider database: %v %v", list, err)
	}
}
