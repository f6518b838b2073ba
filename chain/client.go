package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
)

// ErrReadOnly is returned by write operations of a Client built without a Transactor.
var ErrReadOnly = errors.New("chain: client has no transactor (read-only)")

// Client talks to one deployment of the contracts.
type Client struct {
	backend  Backend
	tx       *Transactor
	dep      Deployment
	chainID  *big.Int
	token    *bindings.MystToken
	registry *bindings.Registry
	log      *slog.Logger
}

// NewClient checks that backend is the deployment's chain and that the
// registry has code, and returns a Client. tx pays for transactions; nil
// makes a read-only client.
func NewClient(ctx context.Context, backend Backend, dep Deployment, tx *Transactor, log *slog.Logger) (*Client, error) {
	if err := dep.Validate(); err != nil {
		return nil, err
	}
	id, err := backend.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain: read chain id: %w", err)
	}
	if id.Uint64() != dep.ChainID || !id.IsUint64() {
		return nil, fmt.Errorf("chain: endpoint is chain %s, deployment is for chain %d", id, dep.ChainID)
	}
	code, err := backend.CodeAt(ctx, dep.Registry, nil)
	if err != nil {
		return nil, fmt.Errorf("chain: read registry code: %w", err)
	}
	if len(code) == 0 {
		return nil, fmt.Errorf("chain: no contract at registry %s (stale deployment file?)", dep.Registry.Hex())
	}
	token, err := bindings.NewMystToken(dep.Token, backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind token: %w", err)
	}
	reg, err := bindings.NewRegistry(dep.Registry, backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind registry: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Client{backend: backend, tx: tx, dep: dep, chainID: id, token: token, registry: reg, log: log}, nil
}

// Deployment is the deployment the client talks to.
func (c *Client) Deployment() Deployment { return c.dep }

// ChainID is the chain id.
func (c *Client) ChainID() *big.Int { return new(big.Int).Set(c.chainID) }

// Backend is the chain backend.
func (c *Client) Backend() Backend { return c.backend }

// Transactor is the account paying for transactions (nil when read-only).
func (c *Client) Transactor() *Transactor { return c.tx }

func (c *Client) send(ctx context.Context, op string, build func(*bind.TransactOpts) (*types.Transaction, error)) (*types.Receipt, error) {
	if c.tx == nil {
		return nil, fmt.Errorf("%w: %s", ErrReadOnly, op)
	}
	r, err := c.tx.Send(ctx, op, build)
	if err == nil {
		c.log.Info("chain: "+op, "tx", r.TxHash.Hex(), "block", r.BlockNumber, "gas", r.GasUsed)
	}
	return r, err
}

func call(ctx context.Context) *bind.CallOpts { return &bind.CallOpts{Context: ctx} }

func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}

func sign(signer identity.Signer, d [32]byte, what string) ([]byte, error) {
	sig, err := signer.Sign(d[:])
	if err != nil {
		return nil, fmt.Errorf("chain: sign %s: %w", what, err)
	}
	return sig, nil
}

// ---- token ----

// TokenBalance is addr's MYST balance in wei.
func (c *Client) TokenBalance(ctx context.Context, addr common.Address) (*big.Int, error) {
	b, err := c.token.BalanceOf(call(ctx), addr)
	if err != nil {
		return nil, wrapCallError("token balance", err)
	}
	return b, nil
}

// Transfer sends amount MYST from the transactor to `to`.
func (c *Client) Transfer(ctx context.Context, to common.Address, amount *big.Int) (*types.Receipt, error) {
	return c.send(ctx, "transfer MYST", func(o *bind.TransactOpts) (*types.Transaction, error) { return c.token.Transfer(o, to, amount) })
}

// TopUp funds a consumer channel (registered or not yet) with a plain token transfer from the transactor.
func (c *Client) TopUp(ctx context.Context, channel common.Address, amount *big.Int) (*types.Receipt, error) {
	return c.send(ctx, "top up channel", func(o *bind.TransactOpts) (*types.Transaction, error) { return c.token.Transfer(o, channel, amount) })
}

// Mint mints test MYST to `to` (dev deployments only; ErrFaucetDisabled otherwise).
func (c *Client) Mint(ctx context.Context, to common.Address, amount *big.Int) (*types.Receipt, error) {
	return c.send(ctx, "mint MYST", func(o *bind.TransactOpts) (*types.Transaction, error) { return c.token.Mint(o, to, amount) })
}

// Approve lets spender move amount of the transactor's MYST.
func (c *Client) Approve(ctx context.Context, spender common.Address, amount *big.Int) (*types.Receipt, error) {
	return c.send(ctx, "approve MYST", func(o *bind.TransactOpts) (*types.Transaction, error) { return c.token.Approve(o, spender, amount) })
}

// ---- registry ----

// HermesParams configures a new hermes.
type HermesParams struct {
	// Stake is the operator's stake, moved into the hermes contract (≥ the registry minimum).
	Stake *big.Int
	// FeeBps is the hermes fee in basis points (≤ 2000).
	FeeBps uint16
	// MinChannelStake is every provider channel's settlement limit without
	// stake, and the least non-zero provider stake.
	MinChannelStake *big.Int
	// MaxChannelStake is the largest provider stake (≤ 2^96-1).
	MaxChannelStake *big.Int
}

// RegisterHermes registers the transactor of op as a hermes operator:
// approves the stake and creates its Hermes contract. op must hold Stake MYST.
func RegisterHermes(ctx context.Context, op *Transactor, dep Deployment, p HermesParams) (common.Address, error) {
	token, err := bindings.NewMystToken(dep.Token, op.Backend())
	if err != nil {
		return common.Address{}, fmt.Errorf("chain: bind token: %w", err)
	}
	reg, err := bindings.NewRegistry(dep.Registry, op.Backend())
	if err != nil {
		return common.Address{}, fmt.Errorf("chain: bind registry: %w", err)
	}
	if _, err := op.Send(ctx, "approve hermes stake", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return token.Approve(o, dep.Registry, p.Stake)
	}); err != nil {
		return common.Address{}, err
	}
	if _, err := op.Send(ctx, "register hermes", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return reg.RegisterHermes(o, p.Stake, p.FeeBps, p.MinChannelStake, p.MaxChannelStake)
	}); err != nil {
		return common.Address{}, err
	}
	return HermesAddress(dep.Registry, dep.HermesImplementation, op.Address()), nil
}

// ChannelAddress is ident's consumer channel with hermes (computed locally).
func (c *Client) ChannelAddress(ident, hermes common.Address) common.Address {
	return ChannelAddress(c.dep.Registry, c.dep.ChannelImplementation, ident, hermes)
}

// RegisterIdentity registers signer's identity with hermes and creates its
// channel; fee MYST goes from the (pre-funded) channel to the transactor.
func (c *Client) RegisterIdentity(ctx context.Context, signer identity.Signer, hermes common.Address, fee *big.Int, beneficiary common.Address) (common.Address, *types.Receipt, error) {
	if fee == nil {
		fee = new(big.Int)
	}
	if beneficiary == (common.Address{}) {
		beneficiary = signer.Address()
	}
	id := signer.Address()
	sig, err := sign(signer, RegisterDigest(c.chainID, c.dep.Registry, id, hermes, fee, beneficiary), "registration")
	if err != nil {
		return common.Address{}, nil, err
	}
	r, err := c.RelayRegisterIdentity(ctx, id, hermes, fee, beneficiary, sig)
	return c.ChannelAddress(id, hermes), r, err
}

// RelayRegisterIdentity submits a registration ident signed elsewhere
// (RegisterDigest): a transactor relaying it pays the gas and receives fee.
func (c *Client) RelayRegisterIdentity(ctx context.Context, ident, hermes common.Address, fee *big.Int, beneficiary common.Address, sig []byte) (*types.Receipt, error) {
	fee = orZero(fee)
	return c.send(ctx, "register identity", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return c.registry.RegisterIdentity(o, ident, hermes, fee, beneficiary, sig)
	})
}

// maxUint96 is the largest deferred registration fee (the Registry keeps it in a uint96).
var maxUint96 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 96), big.NewInt(1))

// RelayRegisterIdentityDeferred submits a deferred registration ident
// signed elsewhere (RegisterDeferredDigest): nothing is paid now; fee is
// recorded as owed to the sender and paid from ident's first provider
// settlements (Registry.settlementPayee).
func (c *Client) RelayRegisterIdentityDeferred(ctx context.Context, ident, hermes common.Address, fee *big.Int, beneficiary common.Address, sig []byte) (*types.Receipt, error) {
	fee = orZero(fee)
	if fee.Sign() < 0 || fee.Cmp(maxUint96) > 0 {
		return nil, fmt.Errorf("chain: deferred registration fee %s out of the uint96 range: %w", fee, ErrAmountTooLarge)
	}
	return c.send(ctx, "register identity (deferred fee)", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return c.registry.RegisterIdentityDeferred(o, ident, hermes, fee, beneficiary, sig)
	})
}

// RegistrationDebt is the registration fee ident still owes and the
// transactor it is owed to (zero when none).
func (c *Client) RegistrationDebt(ctx context.Context, ident common.Address) (common.Address, *big.Int, error) {
	d, err := c.registry.RegistrationDebt(call(ctx), ident)
	if err != nil {
		return common.Address{}, nil, wrapCallError("registration debt", err)
	}
	return d.Transactor, d.Fee, nil
}

// BeneficiaryNonce is the last beneficiary-change nonce ident used (the
// next change signs this + 1).
func (c *Client) BeneficiaryNonce(ctx context.Context, ident common.Address) (uint64, error) {
	n, err := c.registry.BeneficiaryNonce(call(ctx), ident)
	if err != nil {
		return 0, wrapCallError("beneficiary nonce", err)
	}
	return n.Uint64(), nil
}

// RelaySetBeneficiary submits a beneficiary change ident signed elsewhere
// (BeneficiaryDigest); a non-zero fee is paid to the relaying transactor
// from ident's channel with hermes.
func (c *Client) RelaySetBeneficiary(ctx context.Context, ident, beneficiary, hermes common.Address, fee *big.Int, nonce uint64, sig []byte) (*types.Receipt, error) {
	fee = orZero(fee)
	return c.send(ctx, "set beneficiary", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return c.registry.SetBeneficiary(o, ident, beneficiary, hermes, fee, new(big.Int).SetUint64(nonce), sig)
	})
}

// TokenAllowance is how much of owner's MYST spender may move.
func (c *Client) TokenAllowance(ctx context.Context, owner, spender common.Address) (*big.Int, error) {
	a, err := c.token.Allowance(call(ctx), owner, spender)
	if err != nil {
		return nil, wrapCallError("token allowance", err)
	}
	return a, nil
}

// TransferFrom moves amount of from's MYST to `to` with the allowance from
// gave the transactor (Approve).
func (c *Client) TransferFrom(ctx context.Context, from, to common.Address, amount *big.Int) (*types.Receipt, error) {
	return c.send(ctx, "transfer MYST from", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return c.token.TransferFrom(o, from, to, amount)
	})
}

// OpenChannel creates registered signer's consumer channel with one more
// hermes; fee (may be nil) goes from the pre-funded channel to the transactor.
func (c *Client) OpenChannel(ctx context.Context, signer identity.Signer, hermes common.Address, fee *big.Int) (common.Address, *types.Receipt, error) {
	fee = orZero(fee)
	id := signer.Address()
	sig, err := sign(signer, OpenChannelDigest(c.chainID, c.dep.Registry, id, hermes, fee), "channel opening")
	if err != nil {
		return common.Address{}, nil, err
	}
	r, err := c.send(ctx, "open channel", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return c.registry.OpenChannel(o, id, hermes, fee, sig)
	})
	return c.ChannelAddress(id, hermes), r, err
}

// IsRegistered reports whether ident is registered.
func (c *Client) IsRegistered(ctx context.Context, ident common.Address) (bool, error) {
	ok, err := c.registry.IsRegistered(call(ctx), ident)
	if err != nil {
		return false, wrapCallError("is registered", err)
	}
	return ok, nil
}

// Beneficiary is ident's payout address (zero when unregistered).
func (c *Client) Beneficiary(ctx context.Context, ident common.Address) (common.Address, error) {
	b, err := c.registry.Beneficiary(call(ctx), ident)
	if err != nil {
		return common.Address{}, wrapCallError("beneficiary", err)
	}
	return b, nil
}

// SetBeneficiary changes signer's payout address with the next nonce. A
// non-nil, non-zero fee is paid to the transactor from signer's channel with hermes.
func (c *Client) SetBeneficiary(ctx context.Context, signer identity.Signer, beneficiary, hermes common.Address, fee *big.Int) (*types.Receipt, error) {
	fee = orZero(fee)
	id := signer.Address()
	n, err := c.registry.BeneficiaryNonce(call(ctx), id)
	if err != nil {
		return nil, wrapCallError("beneficiary nonce", err)
	}
	nonce := n.Uint64() + 1
	sig, err := sign(signer, BeneficiaryDigest(c.chainID, c.dep.Registry, id, beneficiary, hermes, fee, nonce), "beneficiary change")
	if err != nil {
		return nil, err
	}
	return c.RelaySetBeneficiary(ctx, id, beneficiary, hermes, fee, nonce, sig)
}

// ---- consumer channels ----

// ChannelState is a consumer channel as seen on chain.
type ChannelState struct {
	// Address is the channel (top-up) address.
	Address common.Address
	// Deployed is false before registration (the address may already hold MYST).
	Deployed bool
	// Identity is the consumer that signs promises on the channel.
	Identity common.Address
	// Hermes is the hermes contract settled promises pay.
	Hermes common.Address
	// Balance is the MYST the channel holds now (wei).
	Balance *big.Int
	// Settled is the cumulative amount paid to the hermes.
	Settled *big.Int
	// Nonce is the last used withdraw/exit nonce.
	Nonce uint64
	// ExitUnlockAt is when a pending unilateral exit can be finalized (zero time when none).
	ExitUnlockAt time.Time
}

// ChannelState reads a consumer channel; an undeployed channel reports its balance only.
func (c *Client) ChannelState(ctx context.Context, channel common.Address) (ChannelState, error) {
	st := ChannelState{Address: channel, Settled: new(big.Int)}
	bal, err := c.TokenBalance(ctx, channel)
	if err != nil {
		return st, err
	}
	st.Balance = bal
	code, err := c.backend.CodeAt(ctx, channel, nil)
	if err != nil {
		return st, fmt.Errorf("chain: channel code: %w", err)
	}
	if len(code) == 0 {
		return st, nil
	}
	st.Deployed = true
	ch, err := bindings.NewConsumerChannel(channel, c.backend)
	if err != nil {
		return st, fmt.Errorf("chain: bind channel: %w", err)
	}
	o := call(ctx)
	if st.Identity, err = ch.Identity(o); err != nil {
		return st, wrapCallError("channel identity", err)
	}
	if st.Hermes, err = ch.Hermes(o); err != nil {
		return st, wrapCallError("channel hermes", err)
	}
	if st.Settled, err = ch.Settled(o); err != nil {
		return st, wrapCallError("channel settled", err)
	}
	n, err := ch.Nonce(o)
	if err != nil {
		return st, wrapCallError("channel nonce", err)
	}
	st.Nonce = n.Uint64()
	u, err := ch.ExitUnlockAt(o)
	if err != nil {
		return st, wrapCallError("channel exit", err)
	}
	if u != 0 {
		st.ExitUnlockAt = time.Unix(int64(u), 0).UTC()
	}
	return st, nil
}

// SettleConsumerPromise settles a consumer's promise on its channel, paying
// the hermes; p.Fee goes to the transactor.
func (c *Client) SettleConsumerPromise(ctx context.Context, channel common.Address, p payments.Promise, preimage [32]byte) (*types.Receipt, error) {
	if err := c.checkPromise(p); err != nil {
		return nil, fmt.Errorf("chain: settle consumer promise: %w", err)
	}
	ch, err := bindings.NewConsumerChannel(channel, c.backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind channel: %w", err)
	}
	return c.send(ctx, "settle consumer promise", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return ch.SettlePromise(o, p.Amount, p.Fee, p.Hashlock, preimage, p.Signature)
	})
}

// checkPromise refuses, before any transaction, a promise the contracts
// would refuse for its form: numbers outside uint256, another chain, or a
// signature identity.CheckSignature rejects (the latter wraps
// ErrBadSignature, as the contract's revert would).
func (c *Client) checkPromise(p payments.Promise) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.ChainID.Cmp(c.chainID) != 0 {
		return fmt.Errorf("%w: promise is for chain %s, this chain is %s", ErrBadSignature, p.ChainID, c.chainID)
	}
	if err := identity.CheckSignature(p.Signature); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// nextChannelNonce binds the consumer channel and returns it with the
// nonce its next signed call (exit request, withdrawal) must carry.
func (c *Client) nextChannelNonce(ctx context.Context, channel common.Address) (*bindings.ConsumerChannel, uint64, error) {
	ch, err := bindings.NewConsumerChannel(channel, c.backend)
	if err != nil {
		return nil, 0, fmt.Errorf("chain: bind channel: %w", err)
	}
	n, err := ch.Nonce(call(ctx))
	if err != nil {
		return nil, 0, wrapCallError("channel nonce", err)
	}
	return ch, n.Uint64() + 1, nil
}

// RequestExit starts signer's unilateral exit from channel; fee (may be nil)
// goes from the channel to the transactor.
func (c *Client) RequestExit(ctx context.Context, signer identity.Signer, channel common.Address, fee *big.Int) (*types.Receipt, error) {
	fee = orZero(fee)
	ch, nonce, err := c.nextChannelNonce(ctx, channel)
	if err != nil {
		return nil, err
	}
	sig, err := sign(signer, RequestExitDigest(c.chainID, channel, fee, nonce), "exit request")
	if err != nil {
		return nil, err
	}
	return c.send(ctx, "request exit", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return ch.RequestExit(o, fee, new(big.Int).SetUint64(nonce), sig)
	})
}

// FinalizeExit pays a channel's remaining balance to its identity's beneficiary after the timelock.
func (c *Client) FinalizeExit(ctx context.Context, channel common.Address) (*types.Receipt, error) {
	ch, err := bindings.NewConsumerChannel(channel, c.backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind channel: %w", err)
	}
	return c.send(ctx, "finalize exit", func(o *bind.TransactOpts) (*types.Transaction, error) { return ch.FinalizeExit(o) })
}

// Withdraw is the cooperative exit: amount goes to `to` at once (fee, may be
// nil, to the transactor), signed by the consumer and the hermes operator.
func (c *Client) Withdraw(ctx context.Context, channel common.Address, amount *big.Int, to common.Address, fee *big.Int, consumer, hermesOperator identity.Signer) (*types.Receipt, error) {
	fee = orZero(fee)
	ch, nonce, err := c.nextChannelNonce(ctx, channel)
	if err != nil {
		return nil, err
	}
	d := WithdrawDigest(c.chainID, channel, amount, to, fee, nonce)
	cs, err := sign(consumer, d, "withdrawal (consumer)")
	if err != nil {
		return nil, err
	}
	hs, err := sign(hermesOperator, d, "withdrawal (hermes)")
	if err != nil {
		return nil, err
	}
	return c.send(ctx, "withdraw from channel", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return ch.Withdraw(o, amount, to, fee, new(big.Int).SetUint64(nonce), cs, hs)
	})
}

// ---- hermes and provider channels ----

// HermesStatus mirrors Hermes.Status.
type HermesStatus uint8

// Hermes statuses.
const (
	HermesUninitialized HermesStatus = 0
	HermesActive        HermesStatus = 1
	HermesPenalty       HermesStatus = 2
)

// String implements fmt.Stringer.
func (s HermesStatus) String() string {
	switch s {
	case HermesUninitialized:
		return "uninitialized"
	case HermesActive:
		return "active"
	case HermesPenalty:
		return "penalty"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// HermesState is a Hermes contract as seen on chain.
type HermesState struct {
	// Address is the hermes contract.
	Address common.Address
	// Operator signs provider promises and manages the hermes.
	Operator common.Address
	// Status is active or penalty.
	Status HermesStatus
	// FeeBps is the fee in effect now (a pending change counts once due).
	FeeBps uint16
	// HermesStake is the operator's stake.
	HermesStake *big.Int
	// TotalProviderStake is the sum of provider stakes.
	TotalProviderStake *big.Int
	// MinChannelStake and MaxChannelStake bound provider stakes (see HermesParams).
	MinChannelStake, MaxChannelStake *big.Int
	// Balance is the contract's MYST balance.
	Balance *big.Int
	// Available is what the operator may withdraw (balance above all stakes).
	Available *big.Int
}

// HermesState reads a hermes contract.
func (c *Client) HermesState(ctx context.Context, hermes common.Address) (HermesState, error) {
	st := HermesState{Address: hermes}
	h, err := bindings.NewHermes(hermes, c.backend)
	if err != nil {
		return st, fmt.Errorf("chain: bind hermes: %w", err)
	}
	o := call(ctx)
	var s uint8
	for _, step := range []func() error{
		func() (e error) { st.Operator, e = h.Operator(o); return },
		func() (e error) { s, e = h.Status(o); return },
		func() (e error) { st.FeeBps, e = h.Fee(o); return },
		func() (e error) { st.HermesStake, e = h.HermesStake(o); return },
		func() (e error) { st.TotalProviderStake, e = h.TotalProviderStake(o); return },
		func() (e error) { st.MinChannelStake, e = h.MinChannelStake(o); return },
		func() (e error) { st.MaxChannelStake, e = h.MaxChannelStake(o); return },
		func() (e error) { st.Available, e = h.AvailableBalance(o); return },
		func() (e error) { st.Balance, e = c.token.BalanceOf(o, hermes); return },
	} {
		if err := step(); err != nil {
			return st, wrapCallError("hermes state", err)
		}
	}
	st.Status = HermesStatus(s)
	return st, nil
}

// ProviderChannelState is a provider channel in a Hermes contract.
type ProviderChannelState struct {
	// ID is keccak256(provider ‖ hermes).
	ID [32]byte
	// Settled is the cumulative amount paid out on the channel.
	Settled *big.Int
	// Stake is the provider's stake (raises its settlement limit).
	Stake *big.Int
	// Nonce is the last used DecreaseStake nonce.
	Nonce uint64
	// RegistrationDebt is the deferred registration fee the provider still
	// owes (Registry.registrationDebt; nil or zero: none): settlements pay
	// it from the beneficiary's share to RegistrationCreditor.
	RegistrationDebt     *big.Int
	RegistrationCreditor common.Address
}

// ProviderChannel reads provider's channel in hermes.
func (c *Client) ProviderChannel(ctx context.Context, hermes, provider common.Address) (ProviderChannelState, error) {
	h, err := bindings.NewHermes(hermes, c.backend)
	if err != nil {
		return ProviderChannelState{}, fmt.Errorf("chain: bind hermes: %w", err)
	}
	ch, err := h.Channel(call(ctx), provider)
	if err != nil {
		return ProviderChannelState{}, wrapCallError("provider channel", err)
	}
	to, debt, err := c.RegistrationDebt(ctx, provider)
	if err != nil {
		return ProviderChannelState{}, err
	}
	return ProviderChannelState{ID: payments.ProviderChannelID(provider, hermes), Settled: ch.Settled, Stake: ch.Stake, Nonce: ch.Nonce.Uint64(),
		RegistrationDebt: debt, RegistrationCreditor: to}, nil
}

// SettleProviderPromise settles a hermes promise on provider's channel,
// paying provider's beneficiary; p.Fee goes to the transactor.
func (c *Client) SettleProviderPromise(ctx context.Context, hermes, provider common.Address, p payments.Promise, preimage [32]byte) (*types.Receipt, error) {
	if err := c.checkPromise(p); err != nil {
		return nil, fmt.Errorf("chain: settle provider promise: %w", err)
	}
	h, err := bindings.NewHermes(hermes, c.backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind hermes: %w", err)
	}
	return c.send(ctx, "settle provider promise", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return h.SettlePromise(o, provider, p.Amount, p.Fee, p.Hashlock, preimage, p.Signature)
	})
}

// IncreaseStake adds amount of the transactor's MYST to provider's channel stake in hermes.
func (c *Client) IncreaseStake(ctx context.Context, hermes, provider common.Address, amount *big.Int) (*types.Receipt, error) {
	h, err := bindings.NewHermes(hermes, c.backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind hermes: %w", err)
	}
	if _, err := c.Approve(ctx, hermes, amount); err != nil {
		return nil, err
	}
	return c.send(ctx, "increase provider stake", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return h.IncreaseStake(o, provider, amount)
	})
}

// DecreaseStake returns amount of signer's provider stake in hermes to its
// beneficiary, minus fee (may be nil) for the transactor.
func (c *Client) DecreaseStake(ctx context.Context, signer identity.Signer, hermes common.Address, amount, fee *big.Int) (*types.Receipt, error) {
	fee = orZero(fee)
	h, err := bindings.NewHermes(hermes, c.backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind hermes: %w", err)
	}
	ch, err := c.ProviderChannel(ctx, hermes, signer.Address())
	if err != nil {
		return nil, err
	}
	nonce := ch.Nonce + 1
	sig, err := sign(signer, DecreaseStakeDigest(c.chainID, hermes, signer.Address(), amount, fee, nonce), "stake decrease")
	if err != nil {
		return nil, err
	}
	return c.send(ctx, "decrease provider stake", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return h.DecreaseStake(o, signer.Address(), amount, fee, uint32(nonce), sig)
	})
}

// ResolvePenalty takes a hermes out of the penalty state once its balance covers the stakes.
func (c *Client) ResolvePenalty(ctx context.Context, hermes common.Address) (*types.Receipt, error) {
	h, err := bindings.NewHermes(hermes, c.backend)
	if err != nil {
		return nil, fmt.Errorf("chain: bind hermes: %w", err)
	}
	return c.send(ctx, "resolve hermes penalty", func(o *bind.TransactOpts) (*types.Transaction, error) { return h.ResolvePenalty(o) })
}
