package payments

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

// invoiceTag domain-separates invoice digests from every other digest.
const invoiceTag = "openmyst/invoice/v1"

// invoiceTagV2 domain-separates v2 invoices (with Usage).
const invoiceTagV2 = "openmyst/invoice/v2"

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
	// Usage, when set (a v2 invoice), is what the provider claims the
	// total is for; it is signed with the rest, so an invoice whose total
	// exceeds its own proposal's price for its own Usage proves an
	// overcharge to anyone (package quality). Nil is a v1 invoice.
	Usage *Usage
	// Signature is the provider's 65-byte signature over Digest.
	Signature []byte
}

// Usage is the part of a v2 invoice that says what is charged for.
type Usage struct {
	// ProposalSeq is the sequence number of the provider's signed proposal
	// the session was opened on (its price is the agreed price).
	ProposalSeq uint64
	// ElapsedMs is the session time charged, in milliseconds.
	ElapsedMs uint64
	// Bytes is the tunnel traffic charged, up plus down.
	Bytes uint64
}

// Elapsed is ElapsedMs as a duration (saturating at the largest one).
func (u *Usage) Elapsed() time.Duration {
	if u.ElapsedMs > uint64(math.MaxInt64/int64(time.Millisecond)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(u.ElapsedMs) * time.Millisecond
}

var (
	bigGiB  = big.NewInt(1 << 30)
	bigHour = big.NewInt(int64(time.Hour))
)

// PriceTotal is the agreement total after elapsed session time and bytes
// of traffic at perHour and perGiB wei, with exact integer arithmetic:
//
//	floor(perHour × elapsed_ns / 3600e9) + floor(perGiB × bytes / 2^30)
//
// A negative elapsed counts as zero. It is monotonic in elapsed and bytes.
// Providers price invoices with it and fraud proofs check them with it.
func PriceTotal(perHour, perGiB *big.Int, elapsed time.Duration, bytes uint64) *big.Int {
	if elapsed < 0 {
		elapsed = 0
	}
	t := new(big.Int).Mul(perHour, big.NewInt(int64(elapsed)))
	t.Quo(t, bigHour)
	b := new(big.Int).Mul(perGiB, new(big.Int).SetUint64(bytes))
	b.Quo(b, bigGiB)
	return t.Add(t, b)
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
	if iv.Usage != nil && iv.Usage.ProposalSeq == 0 {
		return fmt.Errorf("%w: usage proposal_seq is zero", ErrDecode)
	}
	return nil
}

// Digest is keccak256("openmyst/invoice/v1" || chainId || agreementId ||
// agreementTotal || transactorFee || hashlock || provider) for a v1
// invoice; a v2 invoice (Usage set) uses the tag "openmyst/invoice/v2" and
// appends proposalSeq || elapsedMs || bytes as 8-byte big-endian words.
func (iv *Invoice) Digest() ([32]byte, error) {
	if err := iv.Validate(); err != nil {
		return [32]byte{}, err
	}
	buf := make([]byte, 0, len(invoiceTagV2)+32*5+20+24)
	if iv.Usage == nil {
		buf = append(buf, invoiceTag...)
	} else {
		buf = append(buf, invoiceTagV2...)
	}
	buf = put256(buf, iv.ChainID)
	buf = put256(buf, iv.AgreementID)
	buf = put256(buf, iv.AgreementTotal)
	buf = put256(buf, iv.TransactorFee)
	buf = append(buf, iv.Hashlock[:]...)
	buf = append(buf, iv.Provider[:]...)
	if u := iv.Usage; u != nil {
		buf = binary.BigEndian.AppendUint64(buf, u.ProposalSeq)
		buf = binary.BigEndian.AppendUint64(buf, u.ElapsedMs)
		buf = binary.BigEndian.AppendUint64(buf, u.Bytes)
	}
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

// invoiceFieldsV2 are a v2 invoice's fields: v1's plus the Usage.
var invoiceFieldsV2 = append(append([]string(nil), invoiceFields...), "proposal_seq", "elapsed_ms", "bytes")

type invoiceJSON struct {
	ChainID        string `json:"chain_id"`
	AgreementID    string `json:"agreement_id"`
	AgreementTotal string `json:"agreement_total"`
	TransactorFee  string `json:"transactor_fee"`
	Hashlock       string `json:"hashlock"`
	Provider       string `json:"provider"`
	Signature      string `json:"signature"`
	ProposalSeq    string `json:"proposal_seq,omitempty"`
	ElapsedMs      string `json:"elapsed_ms,omitempty"`
	Bytes          string `json:"bytes,omitempty"`
}

// MarshalJSON encodes the wire form.
func (iv Invoice) MarshalJSON() ([]byte, error) {
	if err := iv.Validate(); err != nil {
		return nil, err
	}
	w := invoiceJSON{
		ChainID:        decString(iv.ChainID),
		AgreementID:    decString(iv.AgreementID),
		AgreementTotal: decString(iv.AgreementTotal),
		TransactorFee:  decString(iv.TransactorFee),
		Hashlock:       hex0x(iv.Hashlock[:]),
		Provider:       hex0x(iv.Provider[:]),
		Signature:      hex0x(iv.Signature),
	}
	if u := iv.Usage; u != nil {
		w.ProposalSeq = strconv.FormatUint(u.ProposalSeq, 10)
		w.ElapsedMs = strconv.FormatUint(u.ElapsedMs, 10)
		w.Bytes = strconv.FormatUint(u.Bytes, 10)
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the wire form strictly (see DecodeInvoice).
func (iv *Invoice) UnmarshalJSON(data []byte) error { return unmarshalWith(iv, DecodeInvoice, data) }

// DecodeInvoice strictly decodes an invoice's JSON wire form, v1 or v2
// (with proposal_seq, elapsed_ms and bytes); format only, call Verify for
// the signature.
func DecodeInvoice(data []byte) (*Invoice, error) {
	fields := invoiceFields
	if hasField(data, "proposal_seq") {
		fields = invoiceFieldsV2
	}
	o := readObject("invoice", data, fields...)
	iv := Invoice{
		ChainID:        o.uint256("chain_id"),
		AgreementID:    o.uint256("agreement_id"),
		AgreementTotal: o.uint256("agreement_total"),
		TransactorFee:  o.uint256("transactor_fee"),
		Hashlock:       o.bytes32("hashlock"),
		Provider:       o.address("provider"),
		Signature:      o.signature("signature"),
	}
	if len(fields) == len(invoiceFieldsV2) {
		u := Usage{ProposalSeq: o.uint64("proposal_seq"), ElapsedMs: o.uint64("elapsed_ms"), Bytes: o.uint64("bytes")}
		o.read(func() error {
			if u.ProposalSeq == 0 {
				return decodeErr("proposal_seq is zero")
			}
			return nil
		})
		iv.Usage = &u
	}
	if err := o.Err(); err != nil {
		return nil, err
	}
	return &iv, nil
}

// hasField reports whether data is a JSON object with a member named
// exactly name (the strict decoder checks everything else).
func hasField(data []byte, name string) bool {
	var m map[string]json.RawMessage
	if len(data) > MaxMessageSize || json.Unmarshal(data, &m) != nil {
		return false
	}
	_, ok := m[name]
	return ok
}

func (o *wireObject) uint64(name string) (x uint64) {
	o.read(func() (err error) { x, err = parseUint64(name, o.m[name]); return })
	return x
}

// parseUint64 parses a canonical decimal string in [0, 2^64).
func parseUint64(name string, raw json.RawMessage) (uint64, error) {
	x, err := parseUint256(name, raw)
	if err != nil {
		return 0, err
	}
	if !x.IsUint64() {
		return 0, decodeErr("field %q exceeds 2^64-1", name)
	}
	return x.Uint64(), nil
}
