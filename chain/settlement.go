package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// Settlement kinds.
const (
	// KindConsumer is a consumer's promise on its channel (pays the hermes).
	KindConsumer = "consumer"
	// KindProvider is a hermes promise on a provider channel (pays the provider's beneficiary).
	KindProvider = "provider"
)

// Settlement is everything needed to settle one promise on chain: the
// signed promise, where it settles and the hashlock's preimage. It is the
// JSON `myst account promise` writes and `myst account settle` reads.
type Settlement struct {
	// Kind is KindConsumer or KindProvider.
	Kind string
	// ChainID is the chain the promise is signed for.
	ChainID uint64
	// Contract is the consumer channel (KindConsumer) or the Hermes contract (KindProvider).
	Contract common.Address
	// Provider is the provider identity (KindProvider only).
	Provider common.Address
	// Promise is the signed promise; its ChainID equals ChainID.
	Promise payments.Promise
	// Preimage is the hashlock secret R.
	Preimage [32]byte
}

type settlementJSON struct {
	Kind      string         `json:"kind"`
	ChainID   uint64         `json:"chainId"`
	Contract  common.Address `json:"contract"`
	Provider  common.Address `json:"provider"`
	ChannelID common.Hash    `json:"channelId"`
	Amount    string         `json:"amount"`
	Fee       string         `json:"fee"`
	Hashlock  common.Hash    `json:"hashlock"`
	Preimage  common.Hash    `json:"preimage"`
	Signature hexutil.Bytes  `json:"signature"`
}

var settlementFields = []string{"kind", "chainId", "contract", "provider", "channelId", "amount", "fee", "hashlock", "preimage", "signature"}

// MarshalJSON encodes amounts as decimal wei strings.
func (s Settlement) MarshalJSON() ([]byte, error) {
	return json.Marshal(settlementJSON{
		Kind: s.Kind, ChainID: s.ChainID, Contract: s.Contract, Provider: s.Provider,
		ChannelID: s.Promise.ChannelID, Amount: decString(s.Promise.Amount), Fee: decString(s.Promise.Fee),
		Hashlock: s.Promise.Hashlock, Preimage: s.Preimage, Signature: s.Promise.Signature,
	})
}

func decString(v *big.Int) string {
	if v == nil {
		return "0"
	}
	return v.String()
}

func parseWei(name, s string) (*big.Int, error) {
	v, err := money.ParseUint256(s)
	if err != nil {
		return nil, fmt.Errorf("chain: settlement: %s %w", name, err)
	}
	return v, nil
}

// DecodeSettlement parses a settlement strictly and checks it is
// self-consistent: known kind, all fields present and no others, canonical
// decimal amounts, fee not above amount, keccak(preimage) == hashlock, the
// channel id matching the contract (and provider), and a signature of the
// form the contracts accept (identity.CheckSignature). It does not check
// who signed (the contract does; see Signer).
func DecodeSettlement(data []byte) (Settlement, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Settlement{}, fmt.Errorf("chain: settlement: %w", err)
	}
	for _, k := range settlementFields {
		if _, ok := raw[k]; !ok {
			return Settlement{}, fmt.Errorf("chain: settlement: field %q is missing", k)
		}
	}
	var j settlementJSON
	if err := strictjson.Unmarshal(data, &j); err != nil {
		return Settlement{}, fmt.Errorf("chain: settlement: %w", err)
	}
	s := Settlement{Kind: j.Kind, ChainID: j.ChainID, Contract: j.Contract, Provider: j.Provider, Preimage: j.Preimage}
	amount, err := parseWei("amount", j.Amount)
	if err != nil {
		return Settlement{}, err
	}
	fee, err := parseWei("fee", j.Fee)
	if err != nil {
		return Settlement{}, err
	}
	s.Promise = payments.Promise{ChainID: new(big.Int).SetUint64(j.ChainID), ChannelID: j.ChannelID, Amount: amount, Fee: fee, Hashlock: j.Hashlock, Signature: j.Signature}
	if err := s.check(); err != nil {
		return Settlement{}, err
	}
	return s, nil
}

func (s Settlement) check() error {
	if s.ChainID == 0 {
		return errors.New("chain: settlement: chainId is zero")
	}
	if err := s.Promise.Validate(); err != nil {
		return fmt.Errorf("chain: settlement: %w", err)
	}
	if !s.Promise.ChainID.IsUint64() || s.Promise.ChainID.Uint64() != s.ChainID {
		return fmt.Errorf("chain: settlement: promise chain id %s differs from chainId %d", s.Promise.ChainID, s.ChainID)
	}
	if s.Contract == (common.Address{}) {
		return errors.New("chain: settlement: contract is zero")
	}
	switch s.Kind {
	case KindConsumer:
		if s.Provider != (common.Address{}) {
			return errors.New("chain: settlement: a consumer settlement has no provider")
		}
		if s.Promise.ChannelID != payments.ConsumerChannelID(s.Contract) {
			return errors.New("chain: settlement: channelId is not the consumer channel's")
		}
	case KindProvider:
		if s.Provider == (common.Address{}) {
			return errors.New("chain: settlement: provider is zero")
		}
		if s.Promise.ChannelID != payments.ProviderChannelID(s.Provider, s.Contract) {
			return errors.New("chain: settlement: channelId is not keccak(provider, hermes)")
		}
	default:
		return fmt.Errorf("chain: settlement: kind %q, want %q or %q", s.Kind, KindConsumer, KindProvider)
	}
	if s.Promise.Fee.Cmp(s.Promise.Amount) > 0 {
		return errors.New("chain: settlement: fee is above amount")
	}
	if payments.Hashlock(s.Preimage[:]) != s.Promise.Hashlock {
		return errors.New("chain: settlement: preimage does not match hashlock")
	}
	// The contracts' signature rules: a settlement that would revert with
	// BadSignature for its form is refused here.
	if err := identity.CheckSignature(s.Promise.Signature); err != nil {
		return fmt.Errorf("chain: settlement: %w", err)
	}
	return nil
}

// Signer recovers who signed the promise.
func (s Settlement) Signer() (common.Address, error) {
	return s.Promise.RecoverSigner()
}

// Settle submits the settlement through c.
func (c *Client) Settle(ctx context.Context, s Settlement) (*types.Receipt, error) {
	if s.ChainID != c.dep.ChainID {
		return nil, fmt.Errorf("chain: settlement is for chain %d, client is on chain %d", s.ChainID, c.dep.ChainID)
	}
	if s.Kind == KindProvider {
		return c.SettleProviderPromise(ctx, s.Contract, s.Provider, s.Promise, s.Preimage)
	}
	return c.SettleConsumerPromise(ctx, s.Contract, s.Promise, s.Preimage)
}
