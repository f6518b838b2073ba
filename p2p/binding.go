package p2p

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
)

// BindingVersion is the binding record format this code reads and writes.
const BindingVersion = 1

// MaxBindingTTL is the longest a binding record may be valid.
const MaxBindingTTL = 30 * 24 * time.Hour

// bindingDomain separates binding digests from every other signed object.
const bindingDomain = "openmyst.binding\x00"

// Binding is a record, signed by an identity, naming the libp2p peer id
// that speaks for it. A proposal whose peer id is not bound to its provider
// identity is rejected, so nobody can announce or replay a proposal from
// another peer. The digest layout is in docs/discovery.md.
type Binding struct {
	// Version is BindingVersion.
	Version uint8 `json:"version"`
	// ChainID is the chain the identity lives on.
	ChainID uint64 `json:"chain_id"`
	// Identity is the signing identity.
	Identity common.Address `json:"identity"`
	// PeerID is the bound libp2p peer id.
	PeerID peer.ID `json:"peer_id"`
	// IssuedAt is when the record was signed, unix seconds.
	IssuedAt int64 `json:"issued_at"`
	// ExpiresAt is when the record stops being valid, unix seconds.
	ExpiresAt int64 `json:"expires_at"`
	// Signature is the identity's 65-byte EIP-191 signature over Digest.
	Signature hexutil.Bytes `json:"signature"`
}

// NewBinding signs a binding of pid to signer's identity, valid for ttl
// from now.
func NewBinding(signer identity.Signer, chainID uint64, pid peer.ID, now time.Time, ttl time.Duration) (Binding, error) {
	b := Binding{
		Version:   BindingVersion,
		ChainID:   chainID,
		Identity:  signer.Address(),
		PeerID:    pid,
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(ttl).Unix(),
	}
	if err := b.validateFields(); err != nil {
		return Binding{}, err
	}
	d := b.Digest()
	sig, err := signer.Sign(d[:])
	if err != nil {
		return Binding{}, fmt.Errorf("p2p: sign binding: %w", err)
	}
	b.Signature = sig
	return b, nil
}

// Digest is keccak256("openmyst.binding\x00" || version (1 byte) ||
// chainId (uint256) || identity (20 bytes) || len(peerId) (uint16) ||
// peerId bytes (multihash) || issuedAt (uint64) || expiresAt (uint64)),
// all big-endian.
func (b *Binding) Digest() [32]byte {
	pid := []byte(b.PeerID)
	buf := make([]byte, 0, len(bindingDomain)+1+32+20+2+len(pid)+16)
	buf = append(buf, bindingDomain...)
	buf = append(buf, b.Version)
	buf = append(buf, common.LeftPadBytes(new(big.Int).SetUint64(b.ChainID).Bytes(), 32)...)
	buf = append(buf, b.Identity.Bytes()...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(pid)))
	buf = append(buf, pid...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(b.IssuedAt))
	buf = binary.BigEndian.AppendUint64(buf, uint64(b.ExpiresAt))
	return crypto.Keccak256Hash(buf)
}

func (b *Binding) validateFields() error {
	if b.Version != BindingVersion {
		return fmt.Errorf("p2p: binding: version %d, want %d", b.Version, BindingVersion)
	}
	if b.ChainID == 0 {
		return errors.New("p2p: binding: missing chain_id")
	}
	if b.Identity == (common.Address{}) {
		return errors.New("p2p: binding: missing identity")
	}
	if err := b.PeerID.Validate(); err != nil {
		return fmt.Errorf("p2p: binding: peer_id: %w", err)
	}
	if _, err := b.PeerID.ExtractPublicKey(); err != nil {
		return fmt.Errorf("p2p: binding: peer_id does not embed a public key: %w", err)
	}
	if b.IssuedAt <= 0 || b.ExpiresAt <= b.IssuedAt {
		return fmt.Errorf("p2p: binding: bad validity [%d, %d)", b.IssuedAt, b.ExpiresAt)
	}
	if time.Duration(b.ExpiresAt-b.IssuedAt)*time.Second > MaxBindingTTL {
		return fmt.Errorf("p2p: binding: valid for %ds, max %s", b.ExpiresAt-b.IssuedAt, MaxBindingTTL)
	}
	return nil
}

// ErrBindingExpired is returned (wrapped) for a binding outside its
// validity window.
var ErrBindingExpired = errors.New("binding not valid now")

// Verify checks the fields, the signature by b.Identity and that now (with
// skew tolerance for the issue time) is within the validity window.
func (b *Binding) Verify(now time.Time, skew time.Duration) error {
	if err := b.checkSigned(); err != nil {
		return err
	}
	if now.Unix() >= b.ExpiresAt || time.Duration(b.IssuedAt-now.Unix())*time.Second > skew {
		return fmt.Errorf("p2p: %w: [%d, %d), now %d", ErrBindingExpired, b.IssuedAt, b.ExpiresAt, now.Unix())
	}
	return nil
}

// Encode returns the JSON wire form of b.
func (b *Binding) Encode() ([]byte, error) {
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("p2p: encode binding: %w", err)
	}
	return out, nil
}

// MaxBindingSize bounds an encoded binding record.
const MaxBindingSize = 512

// DecodeBinding strictly decodes a binding record (no unknown fields, no
// trailing data, all fields present) and checks its fields and signature,
// but not the clock: call Verify for that.
func DecodeBinding(data []byte) (Binding, error) {
	return strictjson.Decode(data, MaxBindingSize, "p2p: decode binding", (*Binding).checkSigned)
}

// checkSigned checks the fields and the signature by b.Identity
// (identity.VerifyRecord), not the clock.
func (b *Binding) checkSigned() error {
	err := identity.VerifyRecord(bindingRecord{b}, b.Identity, b.Signature)
	if errors.Is(err, identity.ErrBadSignature) {
		return fmt.Errorf("p2p: binding signature: %w", err)
	}
	return err
}

// bindingRecord is a Binding as an identity.Record.
type bindingRecord struct{ b *Binding }

func (r bindingRecord) Validate() error           { return r.b.validateFields() }
func (r bindingRecord) Digest() ([32]byte, error) { return r.b.Digest(), nil }
