package transactor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/money"
)

// Fees are the least fees (MYST wei) the transactor takes per call kind.
type Fees struct {
	// Register is paid from the new identity's channel at registration;
	// an identity whose channel holds less registers with a zero fee
	// (zero-stake onboarding, limited per source; see Config).
	Register *big.Int
	// Beneficiary is paid from the identity's channel at a beneficiary change.
	Beneficiary *big.Int
	// Settle is the least transactor fee a hermes promise must carry.
	Settle *big.Int
}

// Quote is a fee offer signed by the transactor, valid until Expires.
type Quote struct {
	// ChainID and Transactor name the chain and the relaying account.
	ChainID    uint64
	Transactor common.Address
	// Fees are the quoted least fees.
	Fees Fees
	// Expires is when the quote stops being accepted (unix seconds).
	Expires time.Time
	// Signature is the transactor's signature over Digest.
	Signature []byte
}

var tagQuote = [32]byte{'m', 'y', 's', 't', '.', 'T', 'r', 'a', 'n', 's', 'a', 'c', 't', 'o', 'r', 'Q', 'u', 'o', 't', 'e'}

func u256(v *big.Int) []byte {
	if v == nil {
		v = new(big.Int)
	}
	return math.U256Bytes(new(big.Int).Set(v))
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// Digest is what the transactor signs.
func (q Quote) Digest() [32]byte {
	return crypto.Keccak256Hash(tagQuote[:], u64(q.ChainID), q.Transactor.Bytes(),
		u256(q.Fees.Register), u256(q.Fees.Beneficiary), u256(q.Fees.Settle), u64(uint64(q.Expires.Unix())))
}

// SignQuote signs q with signer (its address becomes q.Transactor).
func SignQuote(signer identity.Signer, q Quote) (Quote, error) {
	q.Transactor = signer.Address()
	d := q.Digest()
	sig, err := signer.Sign(d[:])
	if err != nil {
		return Quote{}, fmt.Errorf("transactor: sign quote: %w", err)
	}
	q.Signature = sig
	return q, nil
}

// Errors of quote checks (wrapped).
var (
	// ErrQuoteExpired: the quote's validity window has passed.
	ErrQuoteExpired = errors.New("transactor: fee quote expired")
	// ErrQuoteInvalid: the quote is not this transactor's, for this chain.
	ErrQuoteInvalid = errors.New("transactor: fee quote is not valid here")
)

// Verify checks q is signed by transactor for chainID and unexpired at now.
func (q Quote) Verify(chainID uint64, transactor common.Address, now time.Time) error {
	if q.ChainID != chainID || q.Transactor != transactor {
		return fmt.Errorf("%w: chain %d transactor %s, want chain %d transactor %s", ErrQuoteInvalid, q.ChainID, q.Transactor.Hex(), chainID, transactor.Hex())
	}
	d := q.Digest()
	signer, err := identity.Recover(d[:], q.Signature)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrQuoteInvalid, err)
	}
	if signer != transactor {
		return fmt.Errorf("%w: signed by %s", ErrQuoteInvalid, signer.Hex())
	}
	if !now.Before(q.Expires) {
		return fmt.Errorf("%w at %s", ErrQuoteExpired, q.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

type quoteJSON struct {
	ChainID     uint64         `json:"chainId"`
	Transactor  common.Address `json:"transactor"`
	Register    string         `json:"registerFee"`
	Beneficiary string         `json:"beneficiaryFee"`
	Settle      string         `json:"settleFee"`
	Expires     int64          `json:"expires"`
	Signature   hexutil.Bytes  `json:"signature"`
}

var quoteFields = []string{"chainId", "transactor", "registerFee", "beneficiaryFee", "settleFee", "expires", "signature"}

// MarshalJSON encodes fees as decimal wei strings and Expires as unix seconds.
func (q Quote) MarshalJSON() ([]byte, error) {
	return json.Marshal(quoteJSON{ChainID: q.ChainID, Transactor: q.Transactor, Register: dec(q.Fees.Register),
		Beneficiary: dec(q.Fees.Beneficiary), Settle: dec(q.Fees.Settle), Expires: q.Expires.Unix(), Signature: q.Signature})
}

func dec(v *big.Int) string {
	if v == nil {
		return "0"
	}
	return v.String()
}

// decodeObject decodes data, which must be one JSON object with exactly
// the keys fields, strictly into j; its errors name what was decoded.
func decodeObject(data []byte, what string, j any, fields ...string) error {
	if _, err := strictjson.Object(data, fields...); err != nil {
		return fmt.Errorf("transactor: %s: %w", what, err)
	}
	if err := strictjson.Unmarshal(data, j); err != nil {
		return fmt.Errorf("transactor: %s: %w", what, err)
	}
	return nil
}

// DecodeQuote parses a quote strictly (every field, no others, canonical
// amounts, a signature of the contracts' form). It does not verify who
// signed it (Verify does).
func DecodeQuote(data []byte) (Quote, error) {
	var j quoteJSON
	if err := decodeObject(data, "quote", &j, quoteFields...); err != nil {
		return Quote{}, err
	}
	q := Quote{ChainID: j.ChainID, Transactor: j.Transactor, Signature: j.Signature}
	var err error
	if q.Fees.Register, err = amount("registerFee", j.Register); err != nil {
		return Quote{}, err
	}
	if q.Fees.Beneficiary, err = amount("beneficiaryFee", j.Beneficiary); err != nil {
		return Quote{}, err
	}
	if q.Fees.Settle, err = amount("settleFee", j.Settle); err != nil {
		return Quote{}, err
	}
	if j.Expires <= 0 {
		return Quote{}, fmt.Errorf("transactor: quote: expires %d is not a positive unix time", j.Expires)
	}
	q.Expires = time.Unix(j.Expires, 0)
	if err := identity.CheckSignature(q.Signature); err != nil {
		return Quote{}, fmt.Errorf("transactor: quote: %w", err)
	}
	return q, nil
}

func amount(name, s string) (*big.Int, error) {
	v, err := money.ParseUint256(s)
	if err != nil {
		return nil, fmt.Errorf("transactor: %s %w", name, err)
	}
	return v, nil
}
