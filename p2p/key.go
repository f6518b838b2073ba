package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	ic "github.com/libp2p/go-libp2p/core/crypto"
)

// KeyFile is the peer key's file name inside a node's data dir.
const KeyFile = "p2p.key"

// LoadOrCreateKey reads the ed25519 libp2p key at path, creating it (0600,
// written to a temporary file, synced and renamed) if it does not exist.
// A key file readable by group or others is refused.
func LoadOrCreateKey(path string) (ic.PrivKey, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("p2p: stat key %s: %w", path, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("p2p: key %s has mode %v, want 0600", path, st.Mode().Perm())
		}
		k, err := ic.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("p2p: parse key %s: %w", path, err)
		}
		if k.Type() != ic.Ed25519 {
			return nil, fmt.Errorf("p2p: key %s is %v, want Ed25519", path, k.Type())
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("p2p: read key: %w", err)
	}
	k, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: generate key: %w", err)
	}
	raw, err := ic.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("p2p: marshal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("p2p: key dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".p2p.key-*")
	if err != nil {
		return nil, fmt.Errorf("p2p: write key: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("p2p: write key: %w", err)
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("p2p: write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("p2p: sync key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("p2p: write key: %w", err)
	}
	// Link instead of rename so two processes racing to create the key
	// cannot overwrite each other's: the loser reads the winner's key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKey(path)
		}
		return nil, fmt.Errorf("p2p: install key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return k, nil
}
