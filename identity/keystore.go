package identity

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// Errors returned (wrapped) by Manager. Match them with errors.Is.
var (
	// ErrNotFound means no keystore file holds the identity.
	ErrNotFound = errors.New("identity not found")
	// ErrWrongPassphrase means the passphrase does not decrypt the key.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrLocked means the identity must be unlocked before it can sign.
	ErrLocked = errors.New("identity is locked")
	// ErrCorruptKeyFile means a keystore file is not a valid key file
	// (truncated, not JSON, wrong fields). The file is left untouched.
	ErrCorruptKeyFile = errors.New("corrupt keystore file")
	// ErrExists means the identity is already in the keystore.
	ErrExists = errors.New("identity already exists")
	// ErrNoDefault means no default identity has been chosen.
	ErrNoDefault = errors.New("no default identity")
	// ErrEmptyPassphrase means a new identity was requested with an empty
	// passphrase.
	ErrEmptyPassphrase = errors.New("passphrase must not be empty")
	// ErrBadAddress means a string is not a 0x-prefixed 20-byte hex address.
	ErrBadAddress = errors.New("bad identity address")
)

// defaultSettingKey is the settings key under which the default identity's
// 20 address bytes are stored.
const defaultSettingKey = "identity.default"

// SettingsStore durably remembers small settings (the default identity).
// *storage.DB implements it.
type SettingsStore interface {
	// GetSetting returns the value under key and whether it exists.
	GetSetting(ctx context.Context, key string) ([]byte, bool, error)
	// PutSetting durably stores value under key.
	PutSetting(ctx context.Context, key string, value []byte) error
}

// Identity describes one identity in the keystore.
type Identity struct {
	// Address is the identity id.
	Address common.Address
	// File is the keystore file holding the encrypted key.
	File string
	// Unlocked reports whether the key is decrypted in memory.
	Unlocked bool
	// Default reports whether this is the node's default identity.
	Default bool
}

// Manager manages the identities of one keystore directory: creation,
// import/export of keystore JSON, unlocking and signing.
//
// Keys are stored as go-ethereum keystore v3 files (scrypt + AES-128-CTR,
// file mode 0600, named like geth's UTC--<time>--<address>), so the
// directory is interchangeable with geth's. The directory is re-read on
// every call, so files added by another process are seen, and every file in
// it must be a valid key file: a corrupt file is reported by name, never
// skipped silently and never overwritten.
type Manager struct {
	dir      string
	scryptN  int
	scryptP  int
	settings SettingsStore

	mu       sync.RWMutex
	unlocked map[common.Address]*ecdsa.PrivateKey
	// writeMu serializes adding key files within this process.
	writeMu sync.Mutex
}

// Option configures a Manager.
type Option func(*Manager)

// WithLightScrypt makes new and imported keys use go-ethereum's light
// scrypt parameters (fast, weak: tests and dev networks only).
func WithLightScrypt() Option {
	return func(m *Manager) { m.scryptN, m.scryptP = keystore.LightScryptN, keystore.LightScryptP }
}

// WithSettings sets where the default identity is remembered. Without it
// the default lives only in memory.
func WithSettings(s SettingsStore) Option {
	return func(m *Manager) { m.settings = s }
}

// NewManager opens the keystore directory dir (created with mode 0700 if
// missing) and checks that every key file in it is readable.
func NewManager(dir string, opts ...Option) (*Manager, error) {
	m := &Manager{
		dir:      dir,
		scryptN:  keystore.StandardScryptN,
		scryptP:  keystore.StandardScryptP,
		unlocked: make(map[common.Address]*ecdsa.PrivateKey),
	}
	for _, o := range opts {
		o(m)
	}
	if m.settings == nil {
		m.settings = &memSettings{m: map[string][]byte{}}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: create keystore dir %s: %w", dir, err)
	}
	if _, err := m.scan(); err != nil {
		return nil, err
	}
	return m, nil
}

// Dir returns the keystore directory.
func (m *Manager) Dir() string { return m.dir }

// keyFileJSON is the part of a keystore v3 file the manager checks.
type keyFileJSON struct {
	Address string          `json:"address"`
	Crypto  json.RawMessage `json:"crypto"`
	ID      string          `json:"id"`
	Version int             `json:"version"`
}

// parseKeyFile checks keyjson is a keystore v3 file and returns its address.
func parseKeyFile(keyjson []byte) (common.Address, error) {
	var k keyFileJSON
	if err := json.Unmarshal(keyjson, &k); err != nil {
		return common.Address{}, fmt.Errorf("not valid JSON (truncated?): %v", err)
	}
	if k.Version != 3 {
		return common.Address{}, fmt.Errorf("keystore version %d, want 3", k.Version)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(k.Address, "0x"))
	if err != nil || len(raw) != common.AddressLength {
		return common.Address{}, fmt.Errorf("address %q is not 20 hex bytes", k.Address)
	}
	if len(k.Crypto) == 0 || string(k.Crypto) == "null" {
		return common.Address{}, errors.New("missing crypto section")
	}
	return common.BytesToAddress(raw), nil
}

// scan reads every key file; it fails on the first corrupt file or on two
// files holding the same address.
func (m *Manager) scan() (map[common.Address]string, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("identity: read keystore dir %s: %w", m.dir, err)
	}
	files := make(map[common.Address]string)
	for _, e := range entries {
		name := e.Name()
		// Skip directories, editor backups and our own temporary files, as geth does.
		if e.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		path := filepath.Join(m.dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("identity: read keystore file %s: %w", path, err)
		}
		addr, err := parseKeyFile(data)
		if err != nil {
			return nil, fmt.Errorf("identity: %w %s: %v (move the file away or restore it from a backup)", ErrCorruptKeyFile, path, err)
		}
		if prev, dup := files[addr]; dup {
			return nil, fmt.Errorf("identity: %w: %s and %s both hold %s", ErrCorruptKeyFile, prev, path, addr.Hex())
		}
		files[addr] = path
	}
	return files, nil
}

func (m *Manager) file(addr common.Address) (string, error) {
	files, err := m.scan()
	if err != nil {
		return "", err
	}
	f, ok := files[addr]
	if !ok {
		return "", fmt.Errorf("identity: %w: %s", ErrNotFound, addr.Hex())
	}
	return f, nil
}

// List returns all identities sorted by address.
func (m *Manager) List(ctx context.Context) ([]Identity, error) {
	files, err := m.scan()
	if err != nil {
		return nil, err
	}
	def, _, err := m.storedDefault(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Identity, 0, len(files))
	for addr, f := range files {
		_, unlocked := m.unlocked[addr]
		out = append(out, Identity{Address: addr, File: f, Unlocked: unlocked, Default: addr == def})
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Address.Hex(), out[j].Address.Hex()) < 0 })
	return out, nil
}

// Get returns one identity, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, addr common.Address) (Identity, error) {
	f, err := m.file(addr)
	if err != nil {
		return Identity{}, err
	}
	def, _, err := m.storedDefault(ctx)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Address: addr, File: f, Unlocked: m.IsUnlocked(addr), Default: addr == def}, nil
}

// New creates an identity encrypted with passphrase. The first identity
// created when no default is set becomes the default.
func (m *Manager) New(ctx context.Context, passphrase string) (Identity, error) {
	if passphrase == "" {
		return Identity{}, fmt.Errorf("identity: new: %w", ErrEmptyPassphrase)
	}
	priv, err := crypto.GenerateKey()
	if err != nil {
		return Identity{}, fmt.Errorf("identity: generate key: %w", err)
	}
	return m.store(ctx, priv, passphrase)
}

// Import adds the key in keyJSON (a keystore v3 file, as Export returns),
// decrypting it with passphrase and re-encrypting it with newPassphrase.
// An identity already present gives ErrExists and leaves the existing
// file untouched.
func (m *Manager) Import(ctx context.Context, keyJSON []byte, passphrase, newPassphrase string) (Identity, error) {
	if _, err := parseKeyFile(keyJSON); err != nil {
		return Identity{}, fmt.Errorf("identity: import: %w: %v", ErrCorruptKeyFile, err)
	}
	key, err := keystore.DecryptKey(keyJSON, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return Identity{}, fmt.Errorf("identity: import: %w", ErrWrongPassphrase)
		}
		return Identity{}, fmt.Errorf("identity: import: %w: %v", ErrCorruptKeyFile, err)
	}
	if newPassphrase == "" {
		return Identity{}, fmt.Errorf("identity: import: %w", ErrEmptyPassphrase)
	}
	return m.store(ctx, key.PrivateKey, newPassphrase)
}

func (m *Manager) store(ctx context.Context, priv *ecdsa.PrivateKey, passphrase string) (Identity, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return Identity{}, fmt.Errorf("identity: key id: %w", err)
	}
	key := &keystore.Key{Id: id, Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}
	// Fail fast on a broken or duplicate keystore; addFile checks again
	// under the lock.
	files, err := m.scan()
	if err != nil {
		return Identity{}, err
	}
	if f, ok := files[key.Address]; ok {
		return Identity{}, fmt.Errorf("identity: %w: %s in %s", ErrExists, key.Address.Hex(), f)
	}
	// Encrypt (slow) before taking the locks.
	keyjson, err := keystore.EncryptKey(key, passphrase, m.scryptN, m.scryptP)
	if err != nil {
		return Identity{}, fmt.Errorf("identity: encrypt key: %w", err)
	}
	if err := m.addFile(key.Address, keyjson); err != nil {
		return Identity{}, err
	}
	if _, ok, err := m.storedDefault(ctx); err == nil && !ok {
		if err := m.SetDefault(ctx, key.Address); err != nil {
			return Identity{}, err
		}
	}
	return m.Get(ctx, key.Address)
}

// addFile writes keyjson as a new key file unless addr is already in the
// keystore. The check and the write happen under the in-process mutex and
// the keystore's lock file, so concurrent adders (also in other processes)
// cannot both add the same address.
func (m *Manager) addFile(addr common.Address, keyjson []byte) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	unlock, err := lockDir(m.dir)
	if err != nil {
		return err
	}
	defer unlock()
	files, err := m.scan()
	if err != nil {
		return err
	}
	if f, ok := files[addr]; ok {
		return fmt.Errorf("identity: %w: %s in %s", ErrExists, addr.Hex(), f)
	}
	path := filepath.Join(m.dir, keyFileName(addr, time.Now()))
	if err := writeNewFile(path, keyjson); err != nil {
		return fmt.Errorf("identity: write keystore file: %w", err)
	}
	return nil
}

// keyFileName follows geth's UTC--<ISO8601 with dashes>--<address hex>.
func keyFileName(addr common.Address, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("UTC--%04d-%02d-%02dT%02d-%02d-%02d.%09dZ--%s",
		t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), hex.EncodeToString(addr[:]))
}

// writeNewFile writes content to path with mode 0600, durably, and fails
// if path already exists (it never overwrites).
func writeNewFile(path string, content []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link fails with EEXIST instead of replacing an existing file.
	if err := os.Link(tmpName, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Export returns the keystore JSON of addr exactly as stored (still
// encrypted with its passphrase).
func (m *Manager) Export(addr common.Address) ([]byte, error) {
	f, err := m.file(addr)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("identity: export %s: %w", addr.Hex(), err)
	}
	return data, nil
}

// Unlock decrypts the key of addr with passphrase and keeps it in memory
// until Lock.
func (m *Manager) Unlock(addr common.Address, passphrase string) error {
	f, err := m.file(addr)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return fmt.Errorf("identity: unlock %s: %w", addr.Hex(), err)
	}
	key, err := keystore.DecryptKey(data, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return fmt.Errorf("identity: unlock %s: %w", addr.Hex(), ErrWrongPassphrase)
		}
		return fmt.Errorf("identity: unlock %s: %w %s: %v", addr.Hex(), ErrCorruptKeyFile, f, err)
	}
	if key.Address != addr {
		return fmt.Errorf("identity: unlock %s: %w %s: key decrypts to %s", addr.Hex(), ErrCorruptKeyFile, f, key.Address.Hex())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unlocked[addr] = key.PrivateKey
	return nil
}

// Lock forgets the decrypted key of addr. Locking a locked identity is not
// an error. (Go offers no supported way to wipe an ecdsa key's memory; the
// key becomes unreachable and is collected.)
func (m *Manager) Lock(addr common.Address) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.unlocked, addr)
}

// LockAll locks every identity (on shutdown).
func (m *Manager) LockAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.unlocked)
}

// IsUnlocked reports whether addr is unlocked.
func (m *Manager) IsUnlocked(addr common.Address) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.unlocked[addr]
	return ok
}

// Signer returns a Signer for addr. The identity must exist; it must be
// unlocked when Sign is called (ErrLocked otherwise), so locking it later
// stops the signer.
func (m *Manager) Signer(addr common.Address) (Signer, error) {
	if _, err := m.file(addr); err != nil {
		return nil, err
	}
	return &managedSigner{m: m, addr: addr}, nil
}

type managedSigner struct {
	m    *Manager
	addr common.Address
}

func (s *managedSigner) Address() common.Address { return s.addr }

func (s *managedSigner) Sign(message []byte) ([]byte, error) {
	s.m.mu.RLock()
	defer s.m.mu.RUnlock()
	k, ok := s.m.unlocked[s.addr]
	if !ok {
		return nil, fmt.Errorf("identity: sign as %s: %w", s.addr.Hex(), ErrLocked)
	}
	return NewKeySigner(k).Sign(message)
}

// SetDefault durably remembers addr as the node's default identity.
func (m *Manager) SetDefault(ctx context.Context, addr common.Address) error {
	if _, err := m.file(addr); err != nil {
		return err
	}
	if err := m.settings.PutSetting(ctx, defaultSettingKey, addr.Bytes()); err != nil {
		return fmt.Errorf("identity: store default identity: %w", err)
	}
	return nil
}

func (m *Manager) storedDefault(ctx context.Context) (common.Address, bool, error) {
	raw, ok, err := m.settings.GetSetting(ctx, defaultSettingKey)
	if err != nil {
		return common.Address{}, false, fmt.Errorf("identity: read default identity: %w", err)
	}
	if !ok {
		return common.Address{}, false, nil
	}
	if len(raw) != common.AddressLength {
		return common.Address{}, false, fmt.Errorf("identity: stored default identity has %d bytes, want %d", len(raw), common.AddressLength)
	}
	return common.BytesToAddress(raw), true, nil
}

// Default returns the default identity, or ErrNoDefault when none was set
// or its key file is gone.
func (m *Manager) Default(ctx context.Context) (common.Address, error) {
	addr, ok, err := m.storedDefault(ctx)
	if err != nil {
		return common.Address{}, err
	}
	if !ok {
		return common.Address{}, fmt.Errorf("identity: %w", ErrNoDefault)
	}
	if _, err := m.file(addr); err != nil {
		if errors.Is(err, ErrNotFound) {
			return common.Address{}, fmt.Errorf("identity: %w: %s is no longer in the keystore", ErrNoDefault, addr.Hex())
		}
		return common.Address{}, err
	}
	return addr, nil
}

// ParseAddress parses a 0x-prefixed 40-hex-digit identity id. Mixed-case
// input must carry a valid EIP-55 checksum.
func ParseAddress(s string) (common.Address, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") {
		return common.Address{}, fmt.Errorf("%w %q: want 0x followed by 40 hex digits", ErrBadAddress, s)
	}
	raw, err := hex.DecodeString(s[2:])
	if err != nil {
		return common.Address{}, fmt.Errorf("%w %q: %v", ErrBadAddress, s, err)
	}
	addr := common.BytesToAddress(raw)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && addr.Hex() != s {
		return common.Address{}, fmt.Errorf("%w %q: bad EIP-55 checksum", ErrBadAddress, s)
	}
	return addr, nil
}

type memSettings struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memSettings) GetSetting(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok, nil
}

func (s *memSettings) PutSetting(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}
