package payments

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

// SignatureLength is the length of every signature in this package.
const SignatureLength = identity.SignatureLength

// Promise is a cumulative payment promise over a channel (docs/protocol.md,
// "Promise"). A consumer signs promises on its channel; the hermes operator
// signs promises on provider channels.
type Promise struct {
	// ChainID binds the promise to one chain.
	ChainID *big.Int
	// ChannelID is the consumer channel address left-padded to 32 bytes,
	// or keccak256(provider || hermes) for a provider channel.
	ChannelID [32]byte
	// Amount is the cumulative amount promised over the channel, in token wei.
	Amount *big.Int
	// Fee is the transactor fee, paid out of Amount at settlement.
	Fee *big.Int
	// Hashlock is keccak256(R) of the provider's 32-byte secret R.
	Hashlock [32]byte
	// Signature is the 65-byte EIP-191 signature over Digest.
	Signature []byte
}

// Validate checks that every number is a uint256.
func (p *Promise) Validate() error {
	if err := checkUint256("chain_id", p.ChainID); err != nil {
		return err
	}
	if err := checkUint256("amount", p.Amount); err != nil {
		return err
	}
	return checkUint256("fee", p.Fee)
}

// Digest is keccak256(chainId || channelId || amount || fee || hashlock).
func (p *Promise) Digest() ([32]byte, error) {
	if err := p.Validate(); err != nil {
		return [32]byte{}, err
	}
	return p.digest(), nil
}

// digest is Digest of a validated promise.
func (p *Promise) digest() [32]byte {
	var arr [160]byte
	buf := arr[:0]
	buf = put256(buf, p.ChainID)
	buf = append(buf, p.ChannelID[:]...)
	buf = put256(buf, p.Amount)
	buf = put256(buf, p.Fee)
	buf = append(buf, p.Hashlock[:]...)
	return crypto.Keccak256Hash(buf)
}

// Sign signs the promise's digest with s and stores the signature.
func (p *Promise) Sign(s identity.Signer) error {
	d, err := p.Digest()
	if err != nil {
		return err
	}
	sig, err := s.Sign(d[:])
	if err != nil {
		return fmt.Errorf("payments: sign promise: %w", err)
	}
	p.Signature = sig
	return nil
}

// RecoverSigner returns the identity that signed the promise.
func (p *Promise) RecoverSigner() (common.Address, error) {
	d, err := p.Digest()
	if err != nil {
		return common.Address{}, err
	}
	return identity.Recover(d[:], p.Signature)
}

// Verify checks that the promise was signed by signer.
func (p *Promise) Verify(signer common.Address) error {
	d, err := p.Digest()
	if err != nil {
		return err
	}
	return identity.Verify(signer, d[:], p.Signature)
}

// Equal reports whether p and q are the same promise, signature included.
func (p *Promise) Equal(q *Promise) bool {
	return bigEq(p.ChainID, q.ChainID) && p.ChannelID == q.ChannelID &&
		bigEq(p.Amount, q.Amount) && bigEq(p.Fee, q.Fee) &&
		p.Hashlock == q.Hashlock && bytes.Equal(p.Signature, q.Signature)
}

func bigEq(a, b *big.Int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Cmp(b) == 0
}

var promiseFields = []string{"chain_id", "channel_id", "amount", "fee", "hashlock", "signature"}

// MarshalJSON encodes the wire form: numbers as decimal strings, bytes as
// 0x-hex.
func (p Promise) MarshalJSON() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p.appendJSON(make([]byte, 0, 400)), nil
}

// appendJSON appends the wire form of a validated promise to b: the bytes
// json.Marshal(promiseJSON{...}) produces (decimal digits and hex need no
// escaping), without reflection or a compaction pass.
func (p *Promise) appendJSON(b []byte) []byte {
	b = append(b, `{"chain_id":"`...)
	b = appendDec(b, p.ChainID)
	b = append(b, `","channel_id":"`...)
	b = appendHex0x(b, p.ChannelID[:])
	b = append(b, `","amount":"`...)
	b = appendDec(b, p.Amount)
	b = append(b, `","fee":"`...)
	b = appendDec(b, p.Fee)
	b = append(b, `","hashlock":"`...)
	b = appendHex0x(b, p.Hashlock[:])
	b = append(b, `","signature":"`...)
	b = appendHex0x(b, p.Signature)
	return append(b, `"}`...)
}

// UnmarshalJSON decodes the wire form strictly (see DecodePromise).
func (p *Promise) UnmarshalJSON(data []byte) error { return unmarshalWith(p, DecodePromise, data) }

// DecodePromise strictly decodes a promise's JSON wire form. It checks the
// format only; the signer is checked with Verify or RecoverSigner.
func DecodePromise(data []byte) (*Promise, error) {
	o := readObject("promise", data, promiseFields...)
	p := Promise{
		ChainID:   o.uint256("chain_id"),
		ChannelID: o.bytes32("channel_id"),
		Amount:    o.uint256("amount"),
		Fee:       o.uint256("fee"),
		Hashlock:  o.bytes32("hashlock"),
		Signature: o.signature("signature"),
	}
	if err := o.Err(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Hashlock returns keccak256(r), the hashlock for the secret r.
func Hashlock(r []byte) [32]byte { return crypto.Keccak256Hash(r) }

// NewSecret returns a fresh random 32-byte secret R and its hashlock.
func NewSecret() (r [32]byte, hashlock [32]byte, err error) {
	if _, err := rand.Read(r[:]); err != nil {
		return r, hashlock, fmt.Errorf("payments: read random secret: %w", err)
	}
	return r, Hashlock(r[:]), nil
}

// ConsumerChannelID is the channel id of a consumer channel: its contract
// address left-padded with zeros to 32 bytes.
func ConsumerChannelID(channel common.Address) [32]byte {
	var id [32]byte
	copy(id[12:], channel[:])
	return id
}

// ProviderChannelID is the channel id of a provider's channel in a hermes
// contract: keccak256(provider || hermes).
func ProviderChannelID(provider, hermes common.Address) [32]byte {
	return crypto.Keccak256Hash(provider[:], hermes[:])
}
