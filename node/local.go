package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/term"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/atomicfile"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// Local is what a short-lived command (`myst identity`, `myst account`,
// ...) knows about the node of its data dir: the keystore, the running
// daemon's Tequilapi when there is one, and where the chain is. Commands
// act through the daemon when one runs and on the data dir directly
// otherwise; Local holds that policy once.
type Local struct {
	// DataDir is the node's data directory.
	DataDir string
	// LightScrypt encrypts new keys with weak scrypt parameters (tests,
	// dev networks).
	LightScrypt bool
	// TequilapiURL is where the daemon's Tequilapi listens.
	TequilapiURL string
	// Network is the network definition --network named (nil: none).
	Network *network.Network
	// Prompt asks for a passphrase when neither a file nor
	// $MYST_PASSPHRASE gives one (confirm: ask twice); nil: no prompt.
	Prompt func(prompt string, confirm bool) (string, error)
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

func (l *Local) log() *slog.Logger {
	if l.Log == nil {
		return slog.Default()
	}
	return l.Log
}

// PasswordFile is the daemon's Tequilapi password file.
func (l *Local) PasswordFile() string { return filepath.Join(l.DataDir, tequilapi.PasswordFileName) }

// DeploymentPath is where `myst chain dev` writes, and other commands
// read, the contract addresses by default.
func (l *Local) DeploymentPath() string { return filepath.Join(l.DataDir, "chain", "deployment.json") }

// PendingDir is where the pending transactions of the keys paying gas
// are kept (PendingPath), shared by the daemon and the commands.
func (l *Local) PendingDir() string { return filepath.Join(l.DataDir, "chain") }

// ProviderDir is the provider's state directory (sessions, earnings,
// settlements) in the data dir.
func (l *Local) ProviderDir() string { return filepath.Join(l.DataDir, "provider") }

// Daemon returns a logged-in Tequilapi client when a daemon for this data
// dir is running (client.Daemon); otherwise client.ErrNoDaemon.
func (l *Local) Daemon(ctx context.Context) (*client.Client, error) {
	return client.Daemon(ctx, l.TequilapiURL, l.PasswordFile(), l.log())
}

// Deployment points cfg at the contract deployment: the file flag names
// when given, else the named network's, else DeploymentPath.
func (l *Local) Deployment(cfg *ChainConfig, file string) {
	switch {
	case file != "":
		cfg.Deployment = file
	case l.Network != nil:
		dep := l.Network.Deployment
		cfg.Deployed = &dep
	default:
		cfg.Deployment = l.DeploymentPath()
	}
}

// ChainFlags are where a command finds the chain: its --chain.* flags
// and a hermes contract.
type ChainFlags struct {
	// RPC is the EVM JSON-RPC endpoint.
	RPC string
	// Deployment is the deployment JSON file (empty: Local.Deployment).
	Deployment string
	// TransactorKeyFile holds the key paying gas.
	TransactorKeyFile string
	// Hermes is the hermes contract (empty: the deployment's).
	Hermes string
	// HermesFlag names Hermes's flag in errors (default "hermes").
	HermesFlag string
}

// ChainConfig is the chain source f describes.
func (l *Local) ChainConfig(f ChainFlags) (ChainConfig, error) {
	cfg := ChainConfig{RPC: f.RPC, TransactorKeyFile: f.TransactorKeyFile, PendingDir: l.PendingDir(), Log: l.log()}
	l.Deployment(&cfg, f.Deployment)
	if f.Hermes != "" {
		h, err := identity.ParseAddress(f.Hermes)
		if err != nil {
			name := f.HermesFlag
			if name == "" {
				name = "hermes"
			}
			return cfg, fmt.Errorf("--%s: %w", name, err)
		}
		cfg.Hermes = h
	}
	return cfg, nil
}

// Passphrase reads a passphrase from file or $MYST_PASSPHRASE
// (ReadPassphrase), else asks with Prompt.
func (l *Local) Passphrase(file, prompt string, confirm bool) (string, error) {
	if pw, err := ReadPassphrase(file); !errors.Is(err, ErrNoPassphrase) {
		return pw, err
	}
	if l.Prompt == nil {
		return "", fmt.Errorf("no passphrase: use --passphrase-file F or $%s, or run in a terminal", PassphraseEnv)
	}
	return l.Prompt(prompt, confirm)
}

// IdentityAPI is what commands do with identities: a running daemon's
// Tequilapi client and a tequilapi.Identities over the keystore both
// implement it.
type IdentityAPI interface {
	Identities(ctx context.Context) ([]tequilapi.IdentityDTO, error)
	CreateIdentity(ctx context.Context, passphrase string, setDefault bool) (tequilapi.IdentityDTO, error)
	Identity(ctx context.Context, id common.Address) (tequilapi.IdentityDTO, error)
	SetDefault(ctx context.Context, id common.Address) (tequilapi.IdentityDTO, error)
	Unlock(ctx context.Context, id common.Address, passphrase string) (tequilapi.IdentityDTO, error)
	Sign(ctx context.Context, id common.Address, message string) ([]byte, error)
}

// WithIdentities runs fn on the running daemon's identities, or else on
// the keystore directly (needDB: see WithKeystore).
func (l *Local) WithIdentities(ctx context.Context, needDB bool, fn func(IdentityAPI) error) error {
	if c, err := l.Daemon(ctx); err == nil {
		return fn(c)
	}
	return l.WithKeystore(needDB, func(m *identity.Manager) error {
		return fn(&tequilapi.Identities{IDs: m})
	})
}

// WithKeystore opens the keystore (OpenIdentities; needDB: fail rather
// than go without the node database a daemon holds) and runs fn; every
// key is locked again afterwards.
func (l *Local) WithKeystore(needDB bool, fn func(m *identity.Manager) error) error {
	if l.Network != nil {
		if err := checkLightScrypt(l.Network.ChainID, l.LightScrypt); err != nil {
			return err
		}
	}
	m, closeIDs, err := OpenIdentities(l.DataDir, l.LightScrypt, needDB)
	if err != nil {
		return err
	}
	defer closeIDs()
	return fn(m)
}

// KeystoreAddresses lists the keystore's addresses from its files (no
// passphrase, database or daemon needed: shell completion).
func (l *Local) KeystoreAddresses(ctx context.Context) ([]string, error) {
	m, err := NewIdentityManager(l.DataDir, nil, l.LightScrypt)
	if err != nil {
		return nil, err
	}
	ids, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.Address.Hex())
	}
	return out, nil
}

// Unlocked makes sure id is unlocked in api, with the passphrase from
// passFile, $MYST_PASSPHRASE or Prompt if it is not.
func (l *Local) Unlocked(ctx context.Context, api IdentityAPI, id common.Address, passFile string) error {
	got, err := api.Identity(ctx, id)
	if err != nil || got.Unlocked {
		return err
	}
	pw, err := l.Passphrase(passFile, "Passphrase for "+id.Hex(), false)
	if err != nil {
		return err
	}
	_, err = api.Unlock(ctx, id, pw)
	return err
}

// DefaultIdentity is api's default identity.
func DefaultIdentity(ctx context.Context, api IdentityAPI) (common.Address, error) {
	ids, err := api.Identities(ctx)
	if err != nil {
		return common.Address{}, err
	}
	for _, id := range ids {
		if id.Default {
			return identity.ParseAddress(id.ID)
		}
	}
	return common.Address{}, errors.New("no --identity and no default identity")
}

// IdentityOf resolves addr (an --identity flag), else api's default
// identity (api nil: the running daemon's, else the keystore's).
func (l *Local) IdentityOf(ctx context.Context, addr string, api IdentityAPI) (id common.Address, err error) {
	if addr != "" {
		return identity.ParseAddress(addr)
	}
	if api != nil {
		return DefaultIdentity(ctx, api)
	}
	err = l.WithIdentities(ctx, false, func(api IdentityAPI) error {
		id, err = DefaultIdentity(ctx, api)
		return err
	})
	return id, err
}

// WithSigner unlocks addr in the local keystore (passphrase from
// passFile, $MYST_PASSPHRASE or Prompt) and runs fn with its signer.
func (l *Local) WithSigner(ctx context.Context, addr common.Address, passFile string, fn func(identity.Signer) error) error {
	return l.WithKeystore(false, func(m *identity.Manager) error {
		if err := l.Unlocked(ctx, &tequilapi.Identities{IDs: m}, addr, passFile); err != nil {
			return err
		}
		s, err := m.Signer(addr)
		if err != nil {
			return err
		}
		return fn(s)
	})
}

// TerminalPrompt asks for passphrases on the terminal in, without echo,
// writing the prompts to w; an error when in is not a terminal.
func TerminalPrompt(in *os.File, w io.Writer) func(prompt string, confirm bool) (string, error) {
	return func(prompt string, confirm bool) (string, error) {
		fd := int(in.Fd())
		if !term.IsTerminal(fd) {
			return "", fmt.Errorf("no passphrase: use --passphrase-file F or $%s, or run in a terminal", PassphraseEnv)
		}
		ask := func(p string) (string, error) {
			fmt.Fprint(w, p)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(w)
			if err != nil {
				return "", fmt.Errorf("read passphrase: %w", err)
			}
			return string(b), nil
		}
		pw, err := ask(prompt + ": ")
		if err != nil {
			return "", err
		}
		if pw == "" {
			return "", errors.New("empty passphrase")
		}
		if confirm {
			again, err := ask("Repeat " + strings.ToLower(prompt[:1]) + prompt[1:] + ": ")
			if err != nil {
				return "", err
			}
			if again != pw {
				return "", errors.New("passphrases do not match")
			}
		}
		return pw, nil
	}
}

// CreateIdentity creates an identity (through the daemon when one runs)
// with the passphrase from passFile, $MYST_PASSPHRASE or Prompt (asked
// twice).
func (l *Local) CreateIdentity(ctx context.Context, passFile string, setDefault bool) (tequilapi.IdentityDTO, error) {
	pw, err := l.Passphrase(passFile, "Passphrase for the new identity", true)
	if err != nil {
		return tequilapi.IdentityDTO{}, err
	}
	var id tequilapi.IdentityDTO
	err = l.WithIdentities(ctx, true, func(api IdentityAPI) (err error) {
		id, err = api.CreateIdentity(ctx, pw, setDefault)
		return err
	})
	return id, err
}

// ImportIdentity imports the keystore JSON file keyFile, keeping its
// passphrase (from passFile, $MYST_PASSPHRASE or Prompt). It writes a new
// key file; a running daemon re-reads the keystore directory, so this
// works with or without one.
func (l *Local) ImportIdentity(ctx context.Context, keyFile, passFile string) (common.Address, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return common.Address{}, fmt.Errorf("read key file: %w", err)
	}
	pw, err := l.Passphrase(passFile, "Passphrase of the key file", false)
	if err != nil {
		return common.Address{}, err
	}
	var addr common.Address
	err = l.WithKeystore(false, func(m *identity.Manager) error {
		id, err := m.Import(ctx, data, pw, pw)
		addr = id.Address
		return err
	})
	return addr, err
}

// ExportIdentity returns addr's keystore JSON (encrypted with its
// passphrase); with outFile it writes it there instead, to a new file
// of mode 0600, and returns nil.
func (l *Local) ExportIdentity(addr common.Address, outFile string) ([]byte, error) {
	m, err := NewIdentityManager(l.DataDir, nil, l.LightScrypt)
	if err != nil {
		return nil, err
	}
	data, err := m.Export(addr)
	if err != nil || outFile == "" {
		return data, err
	}
	if err := atomicfile.Create(outFile, data, 0o600); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return nil, nil
}

// Sign signs message as addr (the daemon's identity when one runs),
// unlocking it first with passFile, $MYST_PASSPHRASE or Prompt if needed.
func (l *Local) Sign(ctx context.Context, addr common.Address, message, passFile string) (sig []byte, err error) {
	err = l.WithIdentities(ctx, false, func(api IdentityAPI) error {
		if err := l.Unlocked(ctx, api, addr, passFile); err != nil {
			return err
		}
		sig, err = api.Sign(ctx, addr, message)
		return err
	})
	return sig, err
}
