package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/payments"
)

// ExchangeResponse is the answer to POST /v1/exchange.
type ExchangeResponse struct {
	// Promise is the hermes promise for the provider.
	Promise payments.Promise `json:"promise"`
	// Replayed is true when the message had been accepted before.
	Replayed bool `json:"replayed"`
}

// RevealRequest is the body of POST /v1/reveal.
type RevealRequest struct {
	// Provider is the provider identity the hashlock was issued to.
	Provider common.Address
	// Hashlock is keccak256(R).
	Hashlock [32]byte
	// R is the 32-byte secret.
	R [32]byte
}

// MarshalJSON encodes the wire form {"provider","hashlock","r"} as 0x-hex.
func (q RevealRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"provider": strings.ToLower(q.Provider.Hex()),
		"hashlock": "0x" + hex.EncodeToString(q.Hashlock[:]),
		"r":        "0x" + hex.EncodeToString(q.R[:]),
	})
}

// DecodeRevealRequest strictly decodes a reveal request: exactly the
// fields provider, hashlock and r, as 0x-hex of 20, 32 and 32 bytes.
func DecodeRevealRequest(data []byte) (*RevealRequest, error) {
	var raw struct {
		Provider *string `json:"provider"`
		Hashlock *string `json:"hashlock"`
		R        *string `json:"r"`
	}
	if err := strictjson.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reveal request: %w", err)
	}
	var q RevealRequest
	for _, f := range []struct {
		name string
		v    *string
		dst  []byte
	}{{"provider", raw.Provider, q.Provider[:]}, {"hashlock", raw.Hashlock, q.Hashlock[:]}, {"r", raw.R, q.R[:]}} {
		if f.v == nil {
			return nil, fmt.Errorf("reveal request: missing field %q", f.name)
		}
		if err := DecodeHexExact(*f.v, f.dst); err != nil {
			return nil, fmt.Errorf("reveal request: field %q: %w", f.name, err)
		}
	}
	return &q, nil
}

// DecodeHexExact decodes s, which must be "0x" followed by exactly
// 2*len(dst) hex digits, into dst.
func DecodeHexExact(s string, dst []byte) error {
	if !strings.HasPrefix(s, "0x") {
		return errors.New("must start with 0x")
	}
	if len(s) != 2+2*len(dst) {
		return fmt.Errorf("must be %d bytes", len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s[2:])); err != nil {
		return errors.New("not hex")
	}
	return nil
}

// RevealResponse is the answer to POST /v1/reveal.
type RevealResponse struct {
	// Revealed is how many promises were newly unlocked (0 on a retry).
	Revealed int `json:"revealed"`
}

// ProviderResponse is the answer to GET /v1/providers/{identity}.
type ProviderResponse struct {
	// Identity is the provider (0x-hex).
	Identity string `json:"identity"`
	// ChannelID is the provider's channel id in the hermes contract.
	ChannelID string `json:"channel_id"`
	// Earned is the cumulative amount promised to the provider (wei).
	Earned string `json:"earned"`
	// Settled is how much the provider has settled on chain (wei).
	Settled string `json:"settled"`
	// Unrevealed counts promises waiting for their R.
	Unrevealed int64 `json:"unrevealed"`
	// LatestPromise is the latest hermes promise, null if none.
	LatestPromise *payments.Promise `json:"latest_promise"`
}

// Info describes a hermes (GET /v1/info). It is the hermes's own claim:
// a provider takes the operator and fee it trusts from the chain, not
// from here.
type Info struct {
	// ChainID is the chain this hermes serves.
	ChainID string `json:"chain_id"`
	// HermesID is the Hermes contract address.
	HermesID string `json:"hermes_id"`
	// Operator signs the hermes promises.
	Operator string `json:"operator"`
	// FeeBasisPoints is the hermes fee deducted at provider settlement.
	FeeBasisPoints uint16 `json:"fee_basis_points"`
	// MinConsumerFee is the lowest transactor fee on consumer promises (wei).
	MinConsumerFee string `json:"min_consumer_fee"`
	// SettleThreshold is the revealed unsettled amount that triggers a
	// consumer settlement (wei).
	SettleThreshold string `json:"settle_threshold"`
	// MaxUnrevealed caps a provider's promises waiting for R (0: none).
	MaxUnrevealed int `json:"max_unrevealed"`
}
