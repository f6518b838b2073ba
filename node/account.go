package node

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// PromiseRequest describes a cumulative promise signed by hand (`myst
// account promise`, a dev and testing tool).
type PromiseRequest struct {
	// Amount and Fee are the cumulative amount and the transactor fee in wei.
	Amount, Fee *big.Int
	// Provider, when set, makes it a hermes operator's promise to that
	// provider's channel in Hermes; otherwise the signer promises Amount
	// to Hermes on its own consumer channel.
	Provider *common.Address
	// Preimage is the hashlock secret; nil picks a random one.
	Preimage *[32]byte
}

// ParsePromiseRequest builds a PromiseRequest from `myst account
// promise`'s flags: MYST decimals, an optional provider address and an
// optional 0x-hex 32-byte preimage.
func ParsePromiseRequest(amount, fee, provider, preimage string) (PromiseRequest, error) {
	var req PromiseRequest
	var err error
	if req.Amount, err = money.ParseMYST(amount); err != nil {
		return req, fmt.Errorf("--amount: %w", err)
	}
	if req.Fee, err = money.ParseMYST(fee); err != nil {
		return req, fmt.Errorf("--fee: %w", err)
	}
	if preimage != "" {
		b, err := hexutil.Decode(preimage)
		if err != nil || len(b) != 32 {
			return req, errors.New("--preimage: want 0x + 64 hex digits")
		}
		req.Preimage = (*[32]byte)(b)
	}
	if provider != "" {
		p, err := identity.ParseAddress(provider)
		if err != nil {
			return req, fmt.Errorf("--provider: %w", err)
		}
		req.Provider = &p
	}
	return req, nil
}

// SignSettlement signs the promise req describes with s on c's chain and
// returns it as a settlement (the secret included), checked to decode.
func SignSettlement(c *chain.Client, hermes common.Address, s identity.Signer, req PromiseRequest) (chain.Settlement, []byte, error) {
	var pre [32]byte
	if req.Preimage != nil {
		pre = *req.Preimage
	} else if _, err := rand.Read(pre[:]); err != nil {
		return chain.Settlement{}, nil, fmt.Errorf("promise secret: %w", err)
	}
	st := chain.Settlement{ChainID: c.Deployment().ChainID, Preimage: pre}
	st.Promise = payments.Promise{ChainID: new(big.Int).SetUint64(st.ChainID), Amount: req.Amount, Fee: req.Fee, Hashlock: payments.Hashlock(pre[:])}
	if req.Provider != nil {
		st.Kind, st.Contract, st.Provider = chain.KindProvider, hermes, *req.Provider
		st.Promise.ChannelID = payments.ProviderChannelID(*req.Provider, hermes)
	} else {
		st.Kind, st.Contract = chain.KindConsumer, c.ChannelAddress(s.Address(), hermes)
		st.Promise.ChannelID = payments.ConsumerChannelID(st.Contract)
	}
	if err := st.Promise.Sign(s); err != nil {
		return st, nil, err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return st, nil, err
	}
	if _, err := chain.DecodeSettlement(data); err != nil {
		return st, nil, fmt.Errorf("self-check of the promise file: %w", err)
	}
	return st, append(data, '\n'), nil
}
