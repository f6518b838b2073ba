package tequilapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
)

// Error codes of the account routes.
const (
	// CodeChainUnavailable: no chain is configured or reachable (503).
	CodeChainUnavailable = "chain_unavailable"
	// CodeChainReverted: the contract rejected the transaction or call;
	// the message carries the decoded revert reason (409).
	CodeChainReverted = "chain_reverted"
	// CodeChainError: the chain failed otherwise (timeout, RPC error) (502).
	CodeChainError = "chain_error"
	// CodeIdentityLocked: the identity must be unlocked to sign (409).
	CodeIdentityLocked = "identity_locked"
)

// ErrChainUnavailable is returned (wrapped) by a ChainSource that has no
// chain configured or cannot reach it; the routes answer 503
// chain_unavailable with the error's message.
var ErrChainUnavailable = errors.New("chain unavailable")

// AccountReader is the on-chain state GET /identities/{id}/account reads.
// *chain.Client implements it.
type AccountReader interface {
	// ChainID is the chain's id.
	ChainID() *big.Int
	// ChannelAddress is the consumer channel of identity with hermes.
	ChannelAddress(identity, hermes common.Address) common.Address
	// IsRegistered reports whether identity is registered.
	IsRegistered(ctx context.Context, identity common.Address) (bool, error)
	// ChannelState reads a consumer channel.
	ChannelState(ctx context.Context, channel common.Address) (chain.ChannelState, error)
	// TokenBalance is addr's MYST balance in wei.
	TokenBalance(ctx context.Context, addr common.Address) (*big.Int, error)
	// Beneficiary is identity's payout address.
	Beneficiary(ctx context.Context, identity common.Address) (common.Address, error)
	// ProviderChannel reads identity's provider channel in hermes.
	ProviderChannel(ctx context.Context, hermes, identity common.Address) (chain.ProviderChannelState, error)
}

// AccountChain is the chain access the account routes need: the reads,
// and the transactions of register, topup, beneficiary and settle.
// *chain.Client implements it.
type AccountChain interface {
	AccountReader
	// Deployment is the contract deployment (Faucet: a dev token).
	Deployment() chain.Deployment
	// Transactor pays gas; nil means read-only.
	Transactor() *chain.Transactor
	// RegisterIdentity registers the signer with hermes.
	RegisterIdentity(ctx context.Context, s identity.Signer, hermes common.Address, fee *big.Int, beneficiary common.Address) (common.Address, *types.Receipt, error)
	// Mint mints dev MYST to addr (faucet deployments).
	Mint(ctx context.Context, to common.Address, amount *big.Int) (*types.Receipt, error)
	// TopUp transfers MYST from the transactor to channel.
	TopUp(ctx context.Context, channel common.Address, amount *big.Int) (*types.Receipt, error)
	// SetBeneficiary changes the signer's payout address.
	SetBeneficiary(ctx context.Context, s identity.Signer, beneficiary, hermes common.Address, fee *big.Int) (*types.Receipt, error)
	// Settle settles a signed promise.
	Settle(ctx context.Context, st chain.Settlement) (*types.Receipt, error)
}

var _ AccountChain = (*chain.Client)(nil)

// ChainSource gives the account routes a chain. It is called on every
// request, so it can connect lazily and retry after a failure.
type ChainSource interface {
	// Chain returns the chain (read-only when it has no transactor) and
	// the hermes whose channels the routes act on. An error wrapping
	// ErrChainUnavailable is answered 503.
	Chain(ctx context.Context) (AccountChain, common.Address, error)
}

// ChainSourceFunc adapts a function to ChainSource.
type ChainSourceFunc func(ctx context.Context) (AccountChain, common.Address, error)

// Chain implements ChainSource.
func (f ChainSourceFunc) Chain(ctx context.Context) (AccountChain, common.Address, error) {
	return f(ctx)
}

// TxDTO describes a mined transaction.
type TxDTO struct {
	// TxHash is the transaction hash.
	TxHash string `json:"tx_hash" doc:"0x hash of the mined transaction"`
	// Block is the block it was mined in.
	Block uint64 `json:"block"`
	// GasUsed is the gas it used.
	GasUsed uint64 `json:"gas_used"`
}

func txDTO(r *types.Receipt) TxDTO {
	d := TxDTO{TxHash: r.TxHash.Hex(), GasUsed: r.GasUsed}
	if r.BlockNumber != nil {
		d.Block = r.BlockNumber.Uint64()
	}
	return d
}

// AccountDTO is the answer of GET /identities/{id}/account: the identity's
// on-chain state. Amounts are MYST decimal strings; each has a _wei twin
// with the exact integer in wei.
type AccountDTO struct {
	// ID is the identity.
	ID string `json:"id"`
	// ChainID is the chain the state was read from.
	ChainID uint64 `json:"chain_id"`
	// Registered reports whether the identity is registered.
	Registered bool `json:"registered"`
	// Hermes is the hermes contract of the channel.
	Hermes string `json:"hermes"`
	// Channel is the consumer channel (top-up) address, known before registration.
	Channel string `json:"channel" doc:"top-up address; known before registration"`
	// ChannelDeployed is false before registration.
	ChannelDeployed bool `json:"channel_deployed"`
	// ChannelBalance and ChannelBalanceWei are the MYST the channel holds.
	ChannelBalance    string `json:"channel_balance" doc:"MYST, decimal"`
	ChannelBalanceWei string `json:"channel_balance_wei" doc:"wei, decimal integer"`
	// Settled and SettledWei are what the hermes has settled from the channel so far.
	Settled    string `json:"settled" doc:"MYST, decimal"`
	SettledWei string `json:"settled_wei" doc:"wei, decimal integer"`
	// ExitUnlockAt is when a pending unilateral exit can be finalized.
	ExitUnlockAt *time.Time `json:"exit_unlock_at,omitempty"`
	// Beneficiary is the payout address (empty when not registered).
	Beneficiary string `json:"beneficiary,omitempty"`
	// BeneficiaryBalance and BeneficiaryBalanceWei are the beneficiary's MYST token balance.
	BeneficiaryBalance    string `json:"beneficiary_balance,omitempty" doc:"MYST, decimal"`
	BeneficiaryBalanceWei string `json:"beneficiary_balance_wei,omitempty" doc:"wei, decimal integer"`
	// TokenBalance and TokenBalanceWei are the identity address's own MYST token balance.
	TokenBalance    string `json:"token_balance" doc:"MYST, decimal"`
	TokenBalanceWei string `json:"token_balance_wei" doc:"wei, decimal integer"`
	// ProviderSettled and ProviderSettledWei are what the identity, as a
	// provider, has settled from its channel in the hermes.
	ProviderSettled    string `json:"provider_settled" doc:"MYST, decimal"`
	ProviderSettledWei string `json:"provider_settled_wei" doc:"wei, decimal integer"`
	// ProviderStake and ProviderStakeWei are the stake of that provider channel.
	ProviderStake    string `json:"provider_stake" doc:"MYST, decimal"`
	ProviderStakeWei string `json:"provider_stake_wei" doc:"wei, decimal integer"`
}

// RegisterRequest is the optional body of POST /identities/{id}/register
// (an empty body means no fee and the identity as beneficiary).
type RegisterRequest struct {
	// Beneficiary is the payout address (default: the identity).
	Beneficiary string `json:"beneficiary,omitempty" doc:"0x address; default the identity"`
	// Fee is paid to the transactor from the pre-funded channel.
	Fee string `json:"fee,omitempty" doc:"MYST, decimal; default 0"`
}

// Validate implements Validator.
func (r *RegisterRequest) Validate() error {
	if r.Beneficiary != "" {
		if _, err := parseNonZeroAddress(r.Beneficiary); err != nil {
			return FieldError("beneficiary", err.Error())
		}
	}
	if r.Fee != "" {
		if _, err := money.ParseMYST(r.Fee); err != nil {
			return FieldError("fee", err.Error())
		}
	}
	return nil
}

// RegisterResponse is the answer of POST /identities/{id}/register.
type RegisterResponse struct {
	TxDTO
	// ID is the registered identity.
	ID string `json:"id"`
	// Channel is the identity's consumer channel.
	Channel string `json:"channel"`
	// Hermes is the channel's hermes.
	Hermes string `json:"hermes"`
}

// TopupRequest is the body of POST /identities/{id}/topup.
type TopupRequest struct {
	// Amount is the MYST to add to the channel.
	Amount string `json:"amount" doc:"MYST, decimal, above zero, at most 18 decimals"`
	// FromTransactor transfers from the transactor account even on a dev
	// deployment (which otherwise mints from the faucet).
	FromTransactor bool `json:"from_transactor,omitempty"`
}

// Validate implements Validator.
func (r *TopupRequest) Validate() error {
	_, err := r.Wei()
	return err
}

// Wei is Amount in wei; errors are 400 APIErrors naming the field.
func (r *TopupRequest) Wei() (*big.Int, error) {
	v, err := money.ParseMYST(r.Amount)
	if err != nil {
		return nil, FieldError("amount", err.Error())
	}
	if v.Sign() == 0 {
		return nil, FieldError("amount", "must be above zero")
	}
	return v, nil
}

// TopupResponse is the answer of POST /identities/{id}/topup.
type TopupResponse struct {
	TxDTO
	// Channel is the topped-up channel.
	Channel string `json:"channel"`
	// Minted is true when the MYST came from the dev faucet.
	Minted bool `json:"minted"`
	// Amount and AmountWei are what was added.
	Amount    string `json:"amount" doc:"MYST, decimal"`
	AmountWei string `json:"amount_wei" doc:"wei, decimal integer"`
	// ChannelBalance and ChannelBalanceWei are the channel's balance after the top-up.
	ChannelBalance    string `json:"channel_balance" doc:"MYST, decimal"`
	ChannelBalanceWei string `json:"channel_balance_wei" doc:"wei, decimal integer"`
}

// BeneficiaryRequest is the body of PUT /identities/{id}/beneficiary.
type BeneficiaryRequest struct {
	// Address is the new payout address.
	Address string `json:"address" doc:"0x address, not zero"`
}

// Validate implements Validator.
func (r *BeneficiaryRequest) Validate() error {
	if _, err := parseNonZeroAddress(r.Address); err != nil {
		return FieldError("address", err.Error())
	}
	return nil
}

// BeneficiaryResponse is the answer of PUT /identities/{id}/beneficiary.
type BeneficiaryResponse struct {
	TxDTO
	// ID is the identity.
	ID string `json:"id"`
	// Beneficiary is the payout address now on chain.
	Beneficiary string `json:"beneficiary"`
}

// AccountSettleRequest is the body of POST /identities/{id}/settle: a
// settlement as written by `myst account promise` or given by a hermes.
type AccountSettleRequest struct {
	// Settlement is the settlement JSON object (chain.DecodeSettlement:
	// kind, chainId, contract, provider, channelId, amount, fee, hashlock,
	// preimage, signature; amounts in wei).
	Settlement json.RawMessage `json:"settlement" doc:"settlement object as written by myst account promise (amounts in wei)"`
}

// Validate implements Validator: the settlement must decode strictly and
// be self-consistent.
func (r *AccountSettleRequest) Validate() error {
	_, err := r.Decode()
	return err
}

// Decode returns the decoded settlement; errors are 400 APIErrors naming
// the field.
func (r *AccountSettleRequest) Decode() (chain.Settlement, error) {
	st, err := chain.DecodeSettlement(r.Settlement)
	if err != nil {
		return chain.Settlement{}, FieldError("settlement", err.Error())
	}
	return st, nil
}

// AccountSettleResponse is the answer of POST /identities/{id}/settle.
type AccountSettleResponse struct {
	TxDTO
	// Kind is "provider" (a hermes promise paying the identity's
	// beneficiary) or "consumer" (the identity's promise paying its hermes).
	Kind string `json:"kind"`
	// Paid and PaidWei are what this settlement moved (before the hermes
	// fee for a provider settlement).
	Paid    string `json:"paid" doc:"MYST, decimal"`
	PaidWei string `json:"paid_wei" doc:"wei, decimal integer"`
	// Settled and SettledWei are the cumulative settled amount now.
	Settled    string `json:"settled" doc:"MYST, decimal"`
	SettledWei string `json:"settled_wei" doc:"wei, decimal integer"`
	// Promised and PromisedWei are the promise's cumulative amount.
	Promised    string `json:"promised" doc:"MYST, decimal"`
	PromisedWei string `json:"promised_wei" doc:"wei, decimal integer"`
	// Beneficiary received a provider settlement.
	Beneficiary string `json:"beneficiary,omitempty"`
	// Hermes received a consumer settlement.
	Hermes string `json:"hermes,omitempty"`
	// ChannelBalance and ChannelBalanceWei are a consumer channel's
	// balance after the settlement.
	ChannelBalance    string `json:"channel_balance,omitempty" doc:"MYST, decimal"`
	ChannelBalanceWei string `json:"channel_balance_wei,omitempty" doc:"wei, decimal integer"`
}

func parseNonZeroAddress(s string) (common.Address, error) {
	a, err := identity.ParseAddress(s)
	if err != nil {
		return common.Address{}, errors.New("want 0x followed by 40 hex digits")
	}
	if a == (common.Address{}) {
		return common.Address{}, errors.New("must not be the zero address")
	}
	return a, nil
}

// accountError maps chain and identity errors to API errors.
func accountError(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *APIError
	var rev *chain.RevertError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, ErrChainUnavailable):
		return NewError(http.StatusServiceUnavailable, CodeChainUnavailable, err.Error())
	case errors.Is(err, chain.ErrReadOnly):
		return NewError(http.StatusServiceUnavailable, CodeChainUnavailable, "no transactor account pays gas on this chain: "+err.Error())
	case errors.As(err, &rev):
		return NewError(http.StatusConflict, CodeChainReverted, rev.Error())
	case errors.Is(err, identity.ErrNotFound), errors.Is(err, identity.ErrLocked):
		return identityError(err)
	case errors.Is(err, chain.ErrTxFailed), errors.Is(err, chain.ErrReverted):
		return NewError(http.StatusConflict, CodeChainReverted, err.Error())
	case errors.Is(err, context.Canceled):
		return err
	}
	return NewError(http.StatusBadGateway, CodeChainError, err.Error())
}

// decodeOptionalJSON is DecodeJSON that also accepts an empty body (v is
// left as is).
func decodeOptionalJSON(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return DecodeBytes(body, v)
}

func myst(v *big.Int) (string, string) {
	if v == nil {
		v = new(big.Int)
	}
	return money.FormatMYST(v), v.String()
}

// accountRoutes adapts Accounts to HTTP.
type accountRoutes struct {
	svc *Accounts
	log *slog.Logger
}

// AccountRoutes returns the on-chain account routes of an identity:
// register, account state, top-up, settle and beneficiary (see Accounts).
// Identities must be in ids (404 otherwise); register and beneficiary sign
// with the identity, which must be unlocked (409 identity_locked
// otherwise).
func AccountRoutes(ids IdentityService, chains ChainSource, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	a := &accountRoutes{svc: &Accounts{IDs: ids, Chains: chains, Log: log}, log: log}
	tags := []string{"account"}
	chainErrs := []int{http.StatusNotFound, http.StatusConflict, http.StatusBadGateway, http.StatusServiceUnavailable}
	return []Route{
		{
			Method: http.MethodGet, Path: "/identities/{id}/account",
			Op: Operation{Summary: "On-chain account of an identity: registration, channel, balances, beneficiary", Tags: tags,
				Response: AccountDTO{}, Errors: []int{http.StatusNotFound, http.StatusBadGateway, http.StatusServiceUnavailable}},
			Handler: a.account,
		},
		{
			Method: http.MethodPost, Path: "/identities/{id}/register",
			Op: Operation{Summary: "Register an unlocked identity with the hermes and create its channel (body optional)", Tags: tags,
				Request: RegisterRequest{}, Response: RegisterResponse{}, Errors: chainErrs},
			Handler: a.register,
		},
		{
			Method: http.MethodPost, Path: "/identities/{id}/topup",
			Op: Operation{Summary: "Top up the identity's channel (dev faucet mint on dev deployments, else a transfer from the transactor)", Tags: tags,
				Request: TopupRequest{}, Response: TopupResponse{}, Errors: chainErrs},
			Handler: a.topup,
		},
		{
			Method: http.MethodPost, Path: "/identities/{id}/settle",
			Op: Operation{Summary: "Settle a signed promise concerning the identity on chain", Tags: tags,
				Request: AccountSettleRequest{}, Response: AccountSettleResponse{}, Errors: chainErrs},
			Handler: a.settle,
		},
		{
			Method: http.MethodPut, Path: "/identities/{id}/beneficiary",
			Op: Operation{Summary: "Change the payout address of an unlocked, registered identity", Tags: tags,
				Request: BeneficiaryRequest{}, Response: BeneficiaryResponse{}, Errors: chainErrs},
			Handler: a.beneficiary,
		},
	}
}

func (a *accountRoutes) fail(w http.ResponseWriter, err error) {
	WriteError(w, a.log, accountError(err))
}

// known parses the path identity and checks that the keystore holds it.
func (a *accountRoutes) known(r *http.Request) (common.Address, error) {
	addr, err := pathIdentity(r)
	if err != nil {
		return common.Address{}, err
	}
	if _, err := a.svc.IDs.Get(r.Context(), addr); err != nil {
		return common.Address{}, identityError(err)
	}
	return addr, nil
}

func (a *accountRoutes) account(w http.ResponseWriter, r *http.Request) {
	addr, err := a.known(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	out, err := a.svc.Account(r.Context(), addr)
	respond(w, a.log, http.StatusOK, out, accountError(err))
}

func (a *accountRoutes) register(w http.ResponseWriter, r *http.Request) {
	addr, err := a.known(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var req RegisterRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	out, err := a.svc.Register(r.Context(), addr, req)
	respond(w, a.log, http.StatusOK, out, accountError(err))
}

func (a *accountRoutes) topup(w http.ResponseWriter, r *http.Request) {
	addr, err := a.known(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var req TopupRequest
	if err := DecodeJSON(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	out, err := a.svc.TopUp(r.Context(), addr, req.Amount, req.FromTransactor)
	respond(w, a.log, http.StatusOK, out, accountError(err))
}

func (a *accountRoutes) beneficiary(w http.ResponseWriter, r *http.Request) {
	addr, err := a.known(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var req BeneficiaryRequest
	if err := DecodeJSON(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	ben, _ := parseNonZeroAddress(req.Address) // validated
	out, err := a.svc.SetBeneficiary(r.Context(), addr, ben)
	respond(w, a.log, http.StatusOK, out, accountError(err))
}

func (a *accountRoutes) settle(w http.ResponseWriter, r *http.Request) {
	addr, err := a.known(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var req AccountSettleRequest
	if err := DecodeJSON(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	st, err := req.Decode()
	if err != nil {
		a.fail(w, err)
		return
	}
	out, err := a.svc.SettlePromise(r.Context(), addr, st)
	respond(w, a.log, http.StatusOK, out, accountError(err))
}

// ReadAccount reads addr's on-chain state (Accounts.Account, GET
// /identities/{id}/account).
func ReadAccount(ctx context.Context, c AccountReader, hermes, addr common.Address) (AccountDTO, error) {
	out := AccountDTO{ID: addr.Hex(), ChainID: c.ChainID().Uint64(), Hermes: hermes.Hex()}
	reg, err := c.IsRegistered(ctx, addr)
	if err != nil {
		return out, err
	}
	out.Registered = reg
	st, err := c.ChannelState(ctx, c.ChannelAddress(addr, hermes))
	if err != nil {
		return out, err
	}
	out.Channel, out.ChannelDeployed = st.Address.Hex(), st.Deployed
	out.ChannelBalance, out.ChannelBalanceWei = myst(st.Balance)
	out.Settled, out.SettledWei = myst(st.Settled)
	if !st.ExitUnlockAt.IsZero() {
		t := st.ExitUnlockAt
		out.ExitUnlockAt = &t
	}
	own, err := c.TokenBalance(ctx, addr)
	if err != nil {
		return out, err
	}
	out.TokenBalance, out.TokenBalanceWei = myst(own)
	if reg {
		ben, err := c.Beneficiary(ctx, addr)
		if err != nil {
			return out, err
		}
		bb, err := c.TokenBalance(ctx, ben)
		if err != nil {
			return out, err
		}
		out.Beneficiary = ben.Hex()
		out.BeneficiaryBalance, out.BeneficiaryBalanceWei = myst(bb)
	}
	pc, err := c.ProviderChannel(ctx, hermes, addr)
	if err != nil {
		return out, err
	}
	out.ProviderSettled, out.ProviderSettledWei = myst(pc.Settled)
	out.ProviderStake, out.ProviderStakeWei = myst(pc.Stake)
	return out, nil
}
