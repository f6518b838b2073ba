package payments

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

// exchangeTag domain-separates exchange message digests.
const exchangeTag = "openmyst/exchange-message/v1"

// ExchangeMessage is the consumer's answer to an invoice: a promise on its
// channel, locked by the invoice's hashlock, wrapped with the agreement it
// pays for, the provider and the hermes, and signed by the consumer. The
// provider forwards it to the hermes for a hermes promise.
type ExchangeMessage struct {
	// Promise is the consumer's cumulative promise on its channel.
	Promise Promise
	// AgreementID is the agreement the promise pays for.
	AgreementID *big.Int
	// AgreementTotal is the cumulative amount paid for the agreement.
	AgreementTotal *big.Int
	// Provider is the provider identity to be paid.
	Provider common.Address
	// HermesID is the hermes contract address the consumer's channel uses.
	HermesID common.Address
	// ChainID binds the message to one chain; it equals Promise.ChainID.
	ChainID *big.Int
	// Signature is the consumer's 65-byte signature over Digest.
	Signature []byte
}

// Validate checks numeric ranges and that the message and its promise name
// the same chain.
func (m *ExchangeMessage) Validate() error {
	if err := m.Promise.Validate(); err != nil {
		return fmt.Errorf("promise: %w", err)
	}
	for _, f := range []struct {
		n string
		x *big.Int
	}{{"agreement_id", m.AgreementID}, {"agreement_total", m.AgreementTotal}, {"chain_id", m.ChainID}} {
		if err := checkUint256(f.n, f.x); err != nil {
			return err
		}
	}
	if m.ChainID.Cmp(m.Promise.ChainID) != 0 {
		return decodeErr("chain_id %s differs from promise chain_id %s", m.ChainID, m.Promise.ChainID)
	}
	return nil
}

// Digest is keccak256("openmyst/exchange-message/v1" || chainId ||
// promiseDigest || agreementId || agreementTotal || provider || hermesId).
func (m *ExchangeMessage) Digest() ([32]byte, error) {
	if err := m.Validate(); err != nil {
		return [32]byte{}, err
	}
	return m.digest(m.Promise.digest()), nil
}

// digest is Digest of a validated message whose promise digest is pd.
func (m *ExchangeMessage) digest(pd [32]byte) [32]byte {
	var arr [len(exchangeTag) + 32*4 + 40]byte
	buf := arr[:0]
	buf = append(buf, exchangeTag...)
	buf = put256(buf, m.ChainID)
	buf = append(buf, pd[:]...)
	buf = put256(buf, m.AgreementID)
	buf = put256(buf, m.AgreementTotal)
	buf = append(buf, m.Provider[:]...)
	buf = append(buf, m.HermesID[:]...)
	return crypto.Keccak256Hash(buf)
}

// Sign signs both the promise and the message with the consumer's signer.
func (m *ExchangeMessage) Sign(s identity.Signer) error {
	if err := m.Promise.Sign(s); err != nil {
		return err
	}
	d, err := m.Digest()
	if err != nil {
		return err
	}
	sig, err := s.Sign(d[:])
	if err != nil {
		return fmt.Errorf("payments: sign exchange message: %w", err)
	}
	m.Signature = sig
	return nil
}

// RecoverConsumer returns the consumer identity that signed the message
// and checks that the same identity signed the promise inside it.
func (m *ExchangeMessage) RecoverConsumer() (common.Address, error) {
	consumer, _, err := m.RecoverConsumerDigest()
	return consumer, err
}

// RecoverConsumerDigest is RecoverConsumer that also returns the message's
// Digest, computed once for both.
func (m *ExchangeMessage) RecoverConsumerDigest() (common.Address, [32]byte, error) {
	if err := m.Validate(); err != nil {
		return common.Address{}, [32]byte{}, err
	}
	pd := m.Promise.digest()
	d := m.digest(pd)
	consumer, err := identity.Recover(d[:], m.Signature)
	if err != nil {
		return common.Address{}, [32]byte{}, fmt.Errorf("exchange message: %w", err)
	}
	if err := identity.Verify(consumer, pd[:], m.Promise.Signature); err != nil {
		return common.Address{}, [32]byte{}, fmt.Errorf("exchange message promise: %w", err)
	}
	return consumer, d, nil
}

var exchangeFields = []string{"promise", "agreement_id", "agreement_total", "provider", "hermes_id", "chain_id", "signature"}

// MarshalJSON encodes the wire form.
func (m ExchangeMessage) MarshalJSON() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	// The bytes json.Marshal(exchangeJSON{...}) produces, built directly
	// (Validate checked the promise too).
	b := make([]byte, 0, 800)
	b = append(b, `{"promise":`...)
	b = m.Promise.appendJSON(b)
	b = append(b, `,"agreement_id":"`...)
	b = appendDec(b, m.AgreementID)
	b = append(b, `","agreement_total":"`...)
	b = appendDec(b, m.AgreementTotal)
	b = append(b, `","provider":"`...)
	b = appendHex0x(b, m.Provider[:])
	b = append(b, `","hermes_id":"`...)
	b = appendHex0x(b, m.HermesID[:])
	b = append(b, `","chain_id":"`...)
	b = appendDec(b, m.ChainID)
	b = append(b, `","signature":"`...)
	b = appendHex0x(b, m.Signature)
	return append(b, `"}`...), nil
}

// UnmarshalJSON decodes the wire form strictly (see DecodeExchangeMessage).
func (m *ExchangeMessage) UnmarshalJSON(data []byte) error {
	return unmarshalWith(m, DecodeExchangeMessage, data)
}

// DecodeExchangeMessage strictly decodes an exchange message's JSON wire
// form, including its promise, and checks that both name the same chain.
// Signatures are checked by RecoverConsumer.
func DecodeExchangeMessage(data []byte) (*ExchangeMessage, error) {
	o := readObject("exchange message", data, exchangeFields...)
	var p *Promise
	o.read(func() (err error) { p, err = DecodePromise(o.m["promise"]); return })
	m := ExchangeMessage{
		AgreementID:    o.uint256("agreement_id"),
		AgreementTotal: o.uint256("agreement_total"),
		ChainID:        o.uint256("chain_id"),
		Provider:       o.address("provider"),
		HermesID:       o.address("hermes_id"),
		Signature:      o.signature("signature"),
	}
	if err := o.Err(); err != nil {
		return nil, err
	}
	m.Promise = *p
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("exchange message: %w", err)
	}
	return &m, nil
}
