package transactor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
)

// API paths.
const (
	PathFees        = "/v1/fees"
	PathRegister    = "/v1/register"
	PathBeneficiary = "/v1/beneficiary"
	PathSettle      = "/v1/settle"
	PathRedeem      = "/v1/redeem"
	PathHealth      = "/v1/health"
	PathOpenAPI     = "/openapi.json"
)

// RegisterRequest relays Registry.registerIdentity signed by Identity, or
// with Deferred Registry.registerIdentityDeferred: Fee is then owed to the
// transactor and paid from the identity's first provider settlements.
type RegisterRequest struct {
	Quote       Quote
	Identity    common.Address
	Hermes      common.Address
	Fee         *big.Int
	Beneficiary common.Address
	Deferred    bool
	Signature   []byte
}

// BeneficiaryRequest relays Registry.setBeneficiary signed by Identity.
type BeneficiaryRequest struct {
	Quote       Quote
	Identity    common.Address
	Beneficiary common.Address
	Hermes      common.Address
	Fee         *big.Int
	Nonce       uint64
	Signature   []byte
}

// SettleRequest relays Hermes.settlePromise of a provider promise.
type SettleRequest struct {
	Quote      Quote
	Settlement chain.Settlement
}

// RedeemRequest redeems a voucher: the consumer's zero-fee registration
// signature (RegisterDigest with fee 0) and the voucher code.
type RedeemRequest struct {
	Voucher     string
	Identity    common.Address
	Hermes      common.Address
	Beneficiary common.Address
	Signature   hexutil.Bytes
}

// TxResponse is the answer to a relayed call.
type TxResponse struct {
	// Tx is the mined transaction.
	Tx common.Hash `json:"tx"`
	// Channel is the identity's channel (registration and redemption).
	Channel *common.Address `json:"channel,omitempty"`
	// Extra is the second transaction of a redemption (the top-up).
	TopUpTx *common.Hash `json:"topUpTx,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	// Code is a stable machine-readable reason.
	Code string `json:"code"`
	// Message says it in words.
	Message string `json:"message"`
}

type registerJSON struct {
	Quote       json.RawMessage `json:"quote"`
	Identity    common.Address  `json:"identity"`
	Hermes      common.Address  `json:"hermes"`
	Fee         string          `json:"fee"`
	Beneficiary common.Address  `json:"beneficiary"`
	Deferred    bool            `json:"deferred"`
	Signature   hexutil.Bytes   `json:"signature"`
}

// MarshalJSON encodes the request (fee as a decimal wei string).
func (r RegisterRequest) MarshalJSON() ([]byte, error) {
	q, err := json.Marshal(r.Quote)
	if err != nil {
		return nil, err
	}
	return json.Marshal(registerJSON{Quote: q, Identity: r.Identity, Hermes: r.Hermes, Fee: dec(r.Fee), Beneficiary: r.Beneficiary, Deferred: r.Deferred, Signature: r.Signature})
}

// DecodeRegisterRequest parses a registration request strictly.
func DecodeRegisterRequest(data []byte) (RegisterRequest, error) {
	var j registerJSON
	if err := decodeObject(data, "register request", &j, "quote", "identity", "hermes", "fee", "beneficiary", "deferred", "signature"); err != nil {
		return RegisterRequest{}, err
	}
	r := RegisterRequest{Identity: j.Identity, Hermes: j.Hermes, Beneficiary: j.Beneficiary, Deferred: j.Deferred, Signature: j.Signature}
	var err error
	if r.Quote, err = DecodeQuote(j.Quote); err != nil {
		return RegisterRequest{}, err
	}
	if r.Fee, err = amount("fee", j.Fee); err != nil {
		return RegisterRequest{}, err
	}
	if r.Deferred && r.Fee.BitLen() > 96 {
		return RegisterRequest{}, fmt.Errorf("transactor: register request: deferred fee %s above the uint96 range", r.Fee)
	}
	if err := nonZero(r.Identity, r.Hermes, r.Beneficiary); err != nil {
		return RegisterRequest{}, err
	}
	if err := identity.CheckSignature(r.Signature); err != nil {
		return RegisterRequest{}, fmt.Errorf("transactor: register request: %w", err)
	}
	return r, nil
}

type beneficiaryJSON struct {
	Quote       json.RawMessage `json:"quote"`
	Identity    common.Address  `json:"identity"`
	Beneficiary common.Address  `json:"beneficiary"`
	Hermes      common.Address  `json:"hermes"`
	Fee         string          `json:"fee"`
	Nonce       uint64          `json:"nonce"`
	Signature   hexutil.Bytes   `json:"signature"`
}

// MarshalJSON encodes the request (fee as a decimal wei string).
func (r BeneficiaryRequest) MarshalJSON() ([]byte, error) {
	q, err := json.Marshal(r.Quote)
	if err != nil {
		return nil, err
	}
	return json.Marshal(beneficiaryJSON{Quote: q, Identity: r.Identity, Beneficiary: r.Beneficiary, Hermes: r.Hermes, Fee: dec(r.Fee), Nonce: r.Nonce, Signature: r.Signature})
}

// DecodeBeneficiaryRequest parses a beneficiary-change request strictly.
func DecodeBeneficiaryRequest(data []byte) (BeneficiaryRequest, error) {
	var j beneficiaryJSON
	if err := decodeObject(data, "beneficiary request", &j, "quote", "identity", "beneficiary", "hermes", "fee", "nonce", "signature"); err != nil {
		return BeneficiaryRequest{}, err
	}
	r := BeneficiaryRequest{Identity: j.Identity, Beneficiary: j.Beneficiary, Hermes: j.Hermes, Nonce: j.Nonce, Signature: j.Signature}
	var err error
	if r.Quote, err = DecodeQuote(j.Quote); err != nil {
		return BeneficiaryRequest{}, err
	}
	if r.Fee, err = amount("fee", j.Fee); err != nil {
		return BeneficiaryRequest{}, err
	}
	if err := nonZero(r.Identity, r.Hermes, r.Beneficiary); err != nil {
		return BeneficiaryRequest{}, err
	}
	if r.Nonce == 0 {
		return BeneficiaryRequest{}, fmt.Errorf("transactor: beneficiary request: nonce %d out of range", r.Nonce)
	}
	if err := identity.CheckSignature(r.Signature); err != nil {
		return BeneficiaryRequest{}, fmt.Errorf("transactor: beneficiary request: %w", err)
	}
	return r, nil
}

type settleJSON struct {
	Quote      json.RawMessage `json:"quote"`
	Settlement json.RawMessage `json:"settlement"`
}

// MarshalJSON encodes the request.
func (r SettleRequest) MarshalJSON() ([]byte, error) {
	q, err := json.Marshal(r.Quote)
	if err != nil {
		return nil, err
	}
	s, err := json.Marshal(r.Settlement)
	if err != nil {
		return nil, err
	}
	return json.Marshal(settleJSON{Quote: q, Settlement: s})
}

// DecodeSettleRequest parses a settlement request strictly; only provider
// settlements are relayed.
func DecodeSettleRequest(data []byte) (SettleRequest, error) {
	var j settleJSON
	if err := decodeObject(data, "settle request", &j, "quote", "settlement"); err != nil {
		return SettleRequest{}, err
	}
	q, err := DecodeQuote(j.Quote)
	if err != nil {
		return SettleRequest{}, err
	}
	s, err := chain.DecodeSettlement(j.Settlement)
	if err != nil {
		return SettleRequest{}, fmt.Errorf("transactor: settle request: %w", err)
	}
	if s.Kind != chain.KindProvider {
		return SettleRequest{}, fmt.Errorf("transactor: settle request: kind %q, only %q settlements are relayed", s.Kind, chain.KindProvider)
	}
	return SettleRequest{Quote: q, Settlement: s}, nil
}

type redeemJSON struct {
	Voucher     string         `json:"voucher"`
	Identity    common.Address `json:"identity"`
	Hermes      common.Address `json:"hermes"`
	Beneficiary common.Address `json:"beneficiary"`
	Signature   hexutil.Bytes  `json:"signature"`
}

// MarshalJSON encodes the request.
func (r RedeemRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(redeemJSON(r))
}

// DecodeRedeemRequest parses a redemption request strictly (the voucher
// code is decoded separately with DecodeVoucher).
func DecodeRedeemRequest(data []byte) (RedeemRequest, error) {
	var j redeemJSON
	if err := decodeObject(data, "redeem request", &j, "voucher", "identity", "hermes", "beneficiary", "signature"); err != nil {
		return RedeemRequest{}, err
	}
	r := RedeemRequest(j)
	if len(r.Voucher) > maxVoucherCode {
		return RedeemRequest{}, fmt.Errorf("transactor: redeem request: voucher is %d characters, at most %d", len(r.Voucher), maxVoucherCode)
	}
	if err := nonZero(r.Identity, r.Hermes, r.Beneficiary); err != nil {
		return RedeemRequest{}, err
	}
	if err := identity.CheckSignature(r.Signature); err != nil {
		return RedeemRequest{}, fmt.Errorf("transactor: redeem request: %w", err)
	}
	return r, nil
}

func nonZero(as ...common.Address) error {
	for _, a := range as {
		if a == (common.Address{}) {
			return errors.New("transactor: request: an address is zero")
		}
	}
	return nil
}
