package payments

import (
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

// invoiceTag domain-separates invoice digests from every other digest.
const invoiceTag = "openmyst/invoice/v1"

// Invoice is what a provider sends a consumer every few seconds: the
// cumulative total owed for one agreement (session), locked by the
// hashlock of a secret R the provider keeps. The provider signs it so a
// consumer can prove an overcharge.
type Invoice struct {
	// ChainID binds the invoice to one chain.
	ChainID *big.Int
	// AgreementID identifies the agreement (session) between the parties.
	AgreementID *big.Int
	// AgreementTotal is the cumulative amount owed for the agreement.
	AgreementTotal *big.Int
	// TransactorFee is the fee the consumer's promise must carry.
	TransactorFee *big.Int
	// Hashlock is keccak256(R) of the provider's secret R.
	Hashlock [32]byte
	// Provider is the provider identity that issued the invoice.
	Provider common.Address
	// Signature is the provider's 65-byte signature over Digest.
	Signature []byte
}

// Validate checks that every number is a uint256.
func (iv *Invoice) Validate() error {
	for _, f := range []struct {
		n string
		x *big.Int
	}{{"chain_id", iv.ChainID}, {"agreement_id", iv.AgreementID}, {"agreement_total", iv.AgreementTotal}, {"transactor_fee", iv.TransactorFee}} {
		if err := checkUint256(f.n, f.x); err != nil {
			return err
		}
	}
	return nil
}

// Digest is keccak256("openmyst/invoice/v1" || chainId || agreementId ||
// agreementTotal || transactorFee || hashlock || provider).
func (iv *Invoice) Digest() ([32]byte, error) {
	if err := iv.Validate(); err != nil {
		return [32]byte{}, err
	}
	buf := make([]byte, 0, len(invoiceTag)+32*5+20)
	buf = append(buf, invoiceTag...)
	buf = put256(buf, iv.ChainID)
	buf = put256(buf, iv.AgreementID)
	buf = put256(buf, iv.AgreementTotal)
	buf = put256(buf, iv.TransactorFee)
	buf = append(buf, iv.Hashlock[:]...)
	buf = append(buf, iv.Provider[:]...)
	return crypto.Keccak256Hash(buf), nil
}

// Sign signs the invoice with the provider's signer; s must be Provider.
func (iv *Invoice) Sign(s identity.Signer) error {
	if s.Address() != iv.Provider {
		return fmt.Errorf("payments: invoice provider %s cannot be signed by %s", iv.Provider.Hex(), s.Address().Hex())
	}
	d, err := iv.Digest()
	if err != nil {
		return err
	}
	sig, err := s.Sign(d[:])
	if err != nil {
		return fmt.Errorf("payments: sign invoice: %w", err)
	}
	iv.Signature = sig
	return nil
}

// Verify checks that the invoice was signed by its Provider.
func (iv *Invoice) Verify() error {
	d, err := iv.Digest()
	if err != nil {
		return err
	}
	return identity.Verify(iv.Provider, d[:], iv.Signature)
}

var invoiceFields = []string{"chain_id", "agreement_id", "agreement_total", "transactor_fee", "hashlock", "provider", "signature"}

type invoiceJSON struct {
	ChainID        string `json:"chain_id"`
	AgreementID    string `json:"agreement_id"`
	AgreementTotal string `json:"agreement_total"`
	TransactorFee  string `json:"transactor_fee"`
	Hashlock       string `json:"hashlock"`
	Provider       string `json:"provider"`
	Signature      string `json:"signature"`
}

// MarshalJSON encodes the wire form.
func (iv Invoice) MarshalJSON() ([]byte, error) {
	if err := iv.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(invoiceJSON{
		ChainID:        decString(iv.ChainID),
		AgreementID:    decString(iv.AgreementID),
		AgreementTotal: decString(iv.AgreementTotal),
		TransactorFee:  decString(iv.TransactorFee),
		Hashlock:       hex0x(iv.Hashlock[:]),
		Provider:       hex0x(iv.Provider[:]),
		Signature:      hex0x(iv.Signature),
	})
}

// UnmarshalJSON decodes the wire form strictly (see DecodeInvoice).
func (iv *Invoice) UnmarshalJSON(data []byte) error { return unmarshalWith(iv, DecodeInvoice, data) }

// DecodeInvoice strictly decodes an invoice's JSON wire form (format only;
// call Verify for the signature).
func DecodeInvoice(data []byte) (*Invoice, error) {
	o := readObject("invoice", data, invoiceFields...)
	iv := Invoice{
		ChainID:        o.uint256("chain_id"),
		AgreementID:    o.uint256("agreement_id"),
		AgreementTotal: o.uint256("agreement_total"),
		TransactorFee:  o.uint256("transactor_fee"),
		Hashlock:       o.bytes32("hashlock"),
		Provider:       o.address("provider"),
		Signature:      o.signature("signature"),
	}
	if err := o.Err(); err != nil {
		return nil, err
	}
	return &iv, nil
}
