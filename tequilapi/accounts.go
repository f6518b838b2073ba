package tequilapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
)

// Accounts acts on identities' on-chain accounts. It is the one
// implementation behind the account routes (AccountRoutes) and behind
// `myst account` when no daemon runs (the CLI then builds one over the
// local keystore and chain). Its methods have the signatures of the Go
// client's (tequilapi/client), so a caller can use either.
//
// Any identity's account can be read and topped up; register and
// beneficiary need the identity unlocked in IDs. (The routes also require
// the path identity to be in the keystore.)
//
// Errors are APIErrors where the input is at fault (bad settlement);
// chain and keystore errors are returned as they are (the routes map them
// with accountError).
type Accounts struct {
	// IDs holds the identities; register and beneficiary sign with them.
	IDs IdentityService
	// Chains gives the chain and the hermes of the channels.
	Chains ChainSource
	// Log receives one line per transaction (default slog.Default()).
	Log *slog.Logger
}

func (a *Accounts) log() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}

// chain returns the chain; write requires a transactor paying gas.
func (a *Accounts) chain(ctx context.Context, write bool) (AccountChain, common.Address, error) {
	c, h, err := a.Chains.Chain(ctx)
	if err != nil {
		if !errors.Is(err, ErrChainUnavailable) {
			err = fmt.Errorf("%w: %w", ErrChainUnavailable, err)
		}
		return nil, common.Address{}, err
	}
	if write && c.Transactor() == nil {
		return nil, common.Address{}, chain.ErrReadOnly
	}
	return c, h, nil
}

// signer is addr's signer; without IDs nothing can sign.
func (a *Accounts) signer(addr common.Address) (identity.Signer, error) {
	if a.IDs == nil {
		return nil, fmt.Errorf("%w: %s (no keystore to sign with)", identity.ErrLocked, addr.Hex())
	}
	return a.IDs.Signer(addr)
}

// Account reads id's on-chain state (GET /identities/{id}/account).
func (a *Accounts) Account(ctx context.Context, id common.Address) (AccountDTO, error) {
	c, h, err := a.chain(ctx, false)
	if err != nil {
		return AccountDTO{}, err
	}
	return ReadAccount(ctx, c, h, id)
}

// Register registers id, which must be unlocked, with the hermes and
// creates its channel (POST /identities/{id}/register).
func (a *Accounts) Register(ctx context.Context, id common.Address, req RegisterRequest) (RegisterResponse, error) {
	if err := req.Validate(); err != nil {
		return RegisterResponse{}, err
	}
	fee := new(big.Int)
	if req.Fee != "" {
		fee, _ = money.ParseMYST(req.Fee) // validated
	}
	var ben common.Address
	if req.Beneficiary != "" {
		ben, _ = parseNonZeroAddress(req.Beneficiary) // validated
	}
	sg, err := a.signer(id)
	if err != nil {
		return RegisterResponse{}, err
	}
	c, h, err := a.chain(ctx, true)
	if err != nil {
		return RegisterResponse{}, err
	}
	ch, rc, err := c.RegisterIdentity(ctx, sg, h, fee, ben)
	if err != nil {
		return RegisterResponse{}, err
	}
	a.log().Info("account: identity registered", "id", id.Hex(), "channel", ch.Hex(), "tx", rc.TxHash.Hex())
	return RegisterResponse{TxDTO: txDTO(rc), ID: id.Hex(), Channel: ch.Hex(), Hermes: h.Hex()}, nil
}

// TopUp adds amount MYST (a decimal) to id's channel: minted from the dev
// faucet on dev deployments of dev chains (chain.Deployment.DevFaucet)
// unless fromTransactor, else transferred from
// the transactor (POST /identities/{id}/topup).
func (a *Accounts) TopUp(ctx context.Context, id common.Address, amount string, fromTransactor bool) (TopupResponse, error) {
	req := TopupRequest{Amount: amount, FromTransactor: fromTransactor}
	wei, err := req.Wei()
	if err != nil {
		return TopupResponse{}, err
	}
	c, h, err := a.chain(ctx, true)
	if err != nil {
		return TopupResponse{}, err
	}
	ch := c.ChannelAddress(id, h)
	mint := c.Deployment().DevFaucet() && !fromTransactor
	var rc *types.Receipt
	if mint {
		rc, err = c.Mint(ctx, ch, wei)
	} else {
		rc, err = c.TopUp(ctx, ch, wei)
	}
	if err != nil {
		return TopupResponse{}, err
	}
	a.log().Info("account: channel topped up", "id", id.Hex(), "channel", ch.Hex(), "amount", money.FormatMYST(wei), "minted", mint, "tx", rc.TxHash.Hex())
	bal, err := c.TokenBalance(ctx, ch)
	if err != nil {
		return TopupResponse{}, err
	}
	out := TopupResponse{TxDTO: txDTO(rc), Channel: ch.Hex(), Minted: mint}
	out.Amount, out.AmountWei = myst(wei)
	out.ChannelBalance, out.ChannelBalanceWei = myst(bal)
	return out, nil
}

// SetBeneficiary changes the payout address of id, which must be
// unlocked and registered (PUT /identities/{id}/beneficiary).
func (a *Accounts) SetBeneficiary(ctx context.Context, id, beneficiary common.Address) (BeneficiaryResponse, error) {
	if beneficiary == (common.Address{}) {
		return BeneficiaryResponse{}, FieldError("address", "must not be the zero address")
	}
	sg, err := a.signer(id)
	if err != nil {
		return BeneficiaryResponse{}, err
	}
	c, h, err := a.chain(ctx, true)
	if err != nil {
		return BeneficiaryResponse{}, err
	}
	rc, err := c.SetBeneficiary(ctx, sg, beneficiary, h, nil)
	if err != nil {
		return BeneficiaryResponse{}, err
	}
	now, err := c.Beneficiary(ctx, id)
	if err != nil {
		return BeneficiaryResponse{}, err
	}
	a.log().Info("account: beneficiary changed", "id", id.Hex(), "beneficiary", now.Hex(), "tx", rc.TxHash.Hex())
	return BeneficiaryResponse{TxDTO: txDTO(rc), ID: id.Hex(), Beneficiary: now.Hex()}, nil
}

// SettlePromise settles st, a promise concerning id, on chain (POST
// /identities/{id}/settle): a provider promise must be for id, a consumer
// promise for id's channel.
func (a *Accounts) SettlePromise(ctx context.Context, id common.Address, st chain.Settlement) (AccountSettleResponse, error) {
	c, h, err := a.chain(ctx, true)
	if err != nil {
		return AccountSettleResponse{}, err
	}
	switch st.Kind {
	case chain.KindProvider:
		if st.Provider != id {
			return AccountSettleResponse{}, FieldError("settlement", "provider "+st.Provider.Hex()+" is not "+id.Hex())
		}
	case chain.KindConsumer:
		if want := c.ChannelAddress(id, h); st.Contract != want {
			return AccountSettleResponse{}, FieldError("settlement", "contract "+st.Contract.Hex()+" is not the channel "+want.Hex()+" of "+id.Hex())
		}
	}
	return a.settle(ctx, c, st)
}

// Settle settles st on chain whoever it concerns: anyone may submit a
// signed promise, the transactor gets its fee.
func (a *Accounts) Settle(ctx context.Context, st chain.Settlement) (AccountSettleResponse, error) {
	c, _, err := a.chain(ctx, true)
	if err != nil {
		return AccountSettleResponse{}, err
	}
	return a.settle(ctx, c, st)
}

func (a *Accounts) settle(ctx context.Context, c AccountChain, st chain.Settlement) (AccountSettleResponse, error) {
	var out AccountSettleResponse
	if st.ChainID != c.Deployment().ChainID {
		return out, FieldError("settlement", fmt.Sprintf("promise is for chain %d, the node's chain is %d", st.ChainID, c.Deployment().ChainID))
	}
	var cs chain.ChannelState
	settled := func() (*big.Int, error) {
		if st.Kind == chain.KindProvider {
			pc, err := c.ProviderChannel(ctx, st.Contract, st.Provider)
			return pc.Settled, err
		}
		var err error
		cs, err = c.ChannelState(ctx, st.Contract)
		return cs.Settled, err
	}
	before, err := settled()
	if err != nil {
		return out, err
	}
	rc, err := c.Settle(ctx, st)
	if err != nil {
		return out, err
	}
	after, err := settled()
	if err != nil {
		return out, err
	}
	out = AccountSettleResponse{TxDTO: txDTO(rc), Kind: st.Kind}
	out.Paid, out.PaidWei = myst(new(big.Int).Sub(after, before))
	out.Settled, out.SettledWei = myst(after)
	out.Promised, out.PromisedWei = myst(st.Promise.Amount)
	if st.Kind == chain.KindProvider {
		ben, err := c.Beneficiary(ctx, st.Provider)
		if err != nil {
			return out, err
		}
		out.Beneficiary = ben.Hex()
	} else {
		out.Hermes = cs.Hermes.Hex()
		out.ChannelBalance, out.ChannelBalanceWei = myst(cs.Balance)
	}
	a.log().Info("account: promise settled", "kind", st.Kind, "contract", st.Contract.Hex(), "paid", out.Paid, "tx", rc.TxHash.Hex())
	return out, nil
}
