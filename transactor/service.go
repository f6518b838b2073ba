package transactor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/defaults"
)

// Defaults of Config.
const (
	DefaultQuoteTTL              = 10 * time.Minute
	DefaultMaxVouchersPerSponsor = 100
	DefaultMaxInFlight           = 16
)

// Config configures a Service.
type Config struct {
	// Chain submits the calls; its Transactor's key pays the gas and
	// receives the fees.
	Chain *chain.Client
	// Signer signs fee quotes; it must be the Chain transactor's key.
	Signer identity.Signer
	// Hermes is the hermes whose channels registrations create and whose
	// provider promises are settled.
	Hermes common.Address
	// Fees are the quoted least fees (nil members: zero).
	Fees Fees
	// QuoteTTL is how long a quote stays valid (DefaultQuoteTTL if zero).
	QuoteTTL time.Duration
	// Store records voucher redemptions; nil disables redemption.
	Store *Store
	// MaxVouchersPerSponsor caps redemptions per sponsor (default
	// DefaultMaxVouchersPerSponsor).
	MaxVouchersPerSponsor int
	// Limits are the HTTP rate limits (DefaultLimits if zero).
	Limits Limits
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Log receives events (slog.Default() if nil).
	Log *slog.Logger
}

// Service relays signed calls; Handler serves it over HTTP.
type Service struct {
	cfg     Config
	chainID uint64
	addr    common.Address
	dep     chain.Deployment
	lim     *limiters
	sem     chan struct{}
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Chain == nil || cfg.Chain.Transactor() == nil || cfg.Signer == nil {
		return nil, errors.New("transactor: a chain client with a transactor and a quote signer are required")
	}
	addr := cfg.Chain.Transactor().Address()
	if cfg.Signer.Address() != addr {
		return nil, fmt.Errorf("transactor: quote signer %s is not the paying account %s", cfg.Signer.Address().Hex(), addr.Hex())
	}
	if cfg.Hermes == (common.Address{}) {
		return nil, errors.New("transactor: hermes address is required")
	}
	for _, f := range []**big.Int{&cfg.Fees.Register, &cfg.Fees.Beneficiary, &cfg.Fees.Settle} {
		if *f == nil {
			*f = new(big.Int)
		}
		if (*f).Sign() < 0 {
			return nil, errors.New("transactor: negative fee")
		}
	}
	cfg.QuoteTTL = defaults.Positive(cfg.QuoteTTL, DefaultQuoteTTL)
	cfg.MaxVouchersPerSponsor = defaults.Positive(cfg.MaxVouchersPerSponsor, DefaultMaxVouchersPerSponsor)
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	cfg.Limits.MaxInFlight = defaults.Positive(cfg.Limits.MaxInFlight, DefaultMaxInFlight)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	dep := cfg.Chain.Deployment()
	return &Service{cfg: cfg, chainID: dep.ChainID, addr: addr, dep: dep, lim: newLimiters(cfg.Limits), sem: make(chan struct{}, cfg.Limits.MaxInFlight)}, nil
}

// Address is the relaying account (the fee recipient and quote signer).
func (s *Service) Address() common.Address { return s.addr }

// Error is a refused or failed call with its HTTP status and code.
type Error struct {
	// Status is the HTTP status; Code the API error code.
	Status int
	Code   string
	// Err is the cause.
	Err error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// API error codes.
const (
	CodeBadRequest     = "bad_request"
	CodeQuoteInvalid   = "quote_invalid"
	CodeQuoteExpired   = "quote_expired"
	CodeFeeTooLow      = "fee_too_low"
	CodeCannotPay      = "cannot_pay"
	CodeRefused        = "refused_by_chain"
	CodeConflict       = "conflict"
	CodeRateLimited    = "rate_limited"
	CodeBusy           = "busy"
	CodeVoucherExpired = "voucher_expired"
	CodeRedeemed       = "voucher_redeemed"
	CodeSponsorCap     = "sponsor_cap"
	CodeSponsorBudget  = "sponsor_budget"
	CodeDisabled       = "disabled"
	CodeChain          = "chain_error"
)

func fail(status int, code string, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Err: fmt.Errorf("transactor: "+format, args...)}
}

// Quote returns a fresh signed quote of the configured fees.
func (s *Service) Quote() (Quote, error) {
	return SignQuote(s.cfg.Signer, Quote{ChainID: s.chainID, Fees: s.cfg.Fees, Expires: s.cfg.Now().Add(s.cfg.QuoteTTL).Truncate(time.Second)})
}

func (s *Service) checkQuote(q Quote) error {
	if err := q.Verify(s.chainID, s.addr, s.cfg.Now()); err != nil {
		if errors.Is(err, ErrQuoteExpired) {
			return &Error{Status: http.StatusConflict, Code: CodeQuoteExpired, Err: err}
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeQuoteInvalid, Err: err}
	}
	return nil
}

func checkSigner(digest [32]byte, sig []byte, want common.Address, what string) error {
	got, err := identity.Recover(digest[:], sig)
	if err != nil {
		return fail(http.StatusBadRequest, CodeBadRequest, "%s signature: %w", what, err)
	}
	if got != want {
		return fail(http.StatusBadRequest, CodeBadRequest, "%s signed by %s, not by %s", what, got.Hex(), want.Hex())
	}
	return nil
}

// chainErr turns a chain error into an API error: a revert (at the
// simulation or once mined) is the chain refusing the call.
func chainErr(op string, err error) error {
	var re *chain.RevertError
	if errors.As(err, &re) {
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeRefused, Err: fmt.Errorf("transactor: %s: %w", op, err)}
	}
	return &Error{Status: http.StatusBadGateway, Code: CodeChain, Err: fmt.Errorf("transactor: %s: %w", op, err)}
}

func (s *Service) channelBalance(ctx context.Context, ident, hermes common.Address) (chain.ChannelState, error) {
	st, err := s.cfg.Chain.ChannelState(ctx, s.cfg.Chain.ChannelAddress(ident, hermes))
	if err != nil {
		return st, chainErr("channel state", err)
	}
	return st, nil
}

func (s *Service) checkUnregistered(ctx context.Context, ident common.Address) error {
	ok, err := s.cfg.Chain.IsRegistered(ctx, ident)
	if err != nil {
		return chainErr("registration", err)
	}
	if ok {
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Err: fmt.Errorf("transactor: identity %s: %w", ident.Hex(), chain.ErrAlreadyRegistered)}
	}
	return nil
}

// Register relays a registration. A plain one pays its fee (at least the
// quote) from the identity's channel now. A deferred one (an identity
// whose channel cannot pay) records its fee (at least the quote) as owed
// to the transactor, paid on chain from the identity's first provider
// settlements; since it may never be repaid, sponsored must allow it (the
// HTTP layer limits them per source).
func (s *Service) Register(ctx context.Context, r RegisterRequest, sponsored func() bool) (TxResponse, error) {
	if err := s.checkQuote(r.Quote); err != nil {
		return TxResponse{}, err
	}
	if r.Hermes != s.cfg.Hermes {
		return TxResponse{}, fail(http.StatusBadRequest, CodeBadRequest, "hermes %s is not this transactor's (%s)", r.Hermes.Hex(), s.cfg.Hermes.Hex())
	}
	chainID := new(big.Int).SetUint64(s.chainID)
	digest := chain.RegisterDigest(chainID, s.dep.Registry, r.Identity, r.Hermes, r.Fee, r.Beneficiary)
	if r.Deferred {
		digest = chain.RegisterDeferredDigest(chainID, s.dep.Registry, r.Identity, r.Hermes, r.Fee, r.Beneficiary)
	}
	if err := checkSigner(digest, r.Signature, r.Identity, "registration"); err != nil {
		return TxResponse{}, err
	}
	quoted := minBig(r.Quote.Fees.Register, s.cfg.Fees.Register)
	if r.Fee.Cmp(quoted) < 0 {
		return TxResponse{}, fail(http.StatusPaymentRequired, CodeFeeTooLow, "fee %s below the quoted %s", r.Fee, quoted)
	}
	if err := s.checkUnregistered(ctx, r.Identity); err != nil {
		return TxResponse{}, err
	}
	st, err := s.channelBalance(ctx, r.Identity, r.Hermes)
	if err != nil {
		return TxResponse{}, err
	}
	var rc *types.Receipt
	if r.Deferred {
		if sponsored == nil || !sponsored() {
			return TxResponse{}, fail(http.StatusTooManyRequests, CodeRateLimited, "deferred-fee registrations from this source are used up for now")
		}
		rc, err = s.cfg.Chain.RelayRegisterIdentityDeferred(ctx, r.Identity, r.Hermes, r.Fee, r.Beneficiary, r.Signature)
	} else {
		if st.Balance.Cmp(r.Fee) < 0 {
			return TxResponse{}, fail(http.StatusPaymentRequired, CodeCannotPay, "channel %s holds %s, less than the fee %s (register deferred instead)", st.Address.Hex(), st.Balance, r.Fee)
		}
		rc, err = s.cfg.Chain.RelayRegisterIdentity(ctx, r.Identity, r.Hermes, r.Fee, r.Beneficiary, r.Signature)
	}
	if err != nil {
		return TxResponse{}, chainErr("register", err)
	}
	ch := st.Address
	s.cfg.Log.Info("transactor: registered identity", "identity", r.Identity.Hex(), "fee", r.Fee, "deferred", r.Deferred, "tx", rc.TxHash.Hex())
	return TxResponse{Tx: rc.TxHash, Channel: &ch}, nil
}

// SetBeneficiary relays a beneficiary change; its fee (≥ the quote) is
// paid from the identity's channel with the hermes.
func (s *Service) SetBeneficiary(ctx context.Context, r BeneficiaryRequest) (TxResponse, error) {
	if err := s.checkQuote(r.Quote); err != nil {
		return TxResponse{}, err
	}
	if err := checkSigner(chain.BeneficiaryDigest(new(big.Int).SetUint64(s.chainID), s.dep.Registry, r.Identity, r.Beneficiary, r.Hermes, r.Fee, r.Nonce), r.Signature, r.Identity, "beneficiary change"); err != nil {
		return TxResponse{}, err
	}
	quoted := minBig(r.Quote.Fees.Beneficiary, s.cfg.Fees.Beneficiary)
	if r.Fee.Cmp(quoted) < 0 {
		return TxResponse{}, fail(http.StatusPaymentRequired, CodeFeeTooLow, "fee %s below the quoted %s", r.Fee, quoted)
	}
	ok, err := s.cfg.Chain.IsRegistered(ctx, r.Identity)
	if err != nil {
		return TxResponse{}, chainErr("registration", err)
	}
	if !ok {
		return TxResponse{}, &Error{Status: http.StatusConflict, Code: CodeConflict, Err: fmt.Errorf("transactor: identity %s: %w", r.Identity.Hex(), chain.ErrNotRegistered)}
	}
	n, err := s.cfg.Chain.BeneficiaryNonce(ctx, r.Identity)
	if err != nil {
		return TxResponse{}, chainErr("beneficiary nonce", err)
	}
	if r.Nonce != n+1 {
		return TxResponse{}, &Error{Status: http.StatusConflict, Code: CodeConflict, Err: fmt.Errorf("transactor: nonce %d, want %d: %w", r.Nonce, n+1, chain.ErrBadNonce)}
	}
	if r.Fee.Sign() > 0 {
		st, err := s.channelBalance(ctx, r.Identity, r.Hermes)
		if err != nil {
			return TxResponse{}, err
		}
		if !st.Deployed || st.Balance.Cmp(r.Fee) < 0 {
			return TxResponse{}, fail(http.StatusPaymentRequired, CodeCannotPay, "channel %s (deployed %v) holds %s, less than the fee %s", st.Address.Hex(), st.Deployed, st.Balance, r.Fee)
		}
	}
	rc, err := s.cfg.Chain.RelaySetBeneficiary(ctx, r.Identity, r.Beneficiary, r.Hermes, r.Fee, r.Nonce, r.Signature)
	if err != nil {
		return TxResponse{}, chainErr("set beneficiary", err)
	}
	return TxResponse{Tx: rc.TxHash}, nil
}

// Settle relays a provider promise settlement whose transactor fee (the
// promise's fee, paid by the hermes to the caller) is at least the quote.
// It refuses what the contract would refuse (chain.ProviderPayoutOf over
// the current state) before simulating and sending.
func (s *Service) Settle(ctx context.Context, r SettleRequest) (TxResponse, error) {
	if err := s.checkQuote(r.Quote); err != nil {
		return TxResponse{}, err
	}
	st := r.Settlement
	if st.ChainID != s.chainID {
		return TxResponse{}, fail(http.StatusBadRequest, CodeBadRequest, "settlement for chain %d, this is chain %d", st.ChainID, s.chainID)
	}
	if st.Contract != s.cfg.Hermes {
		return TxResponse{}, fail(http.StatusBadRequest, CodeBadRequest, "hermes %s is not this transactor's (%s)", st.Contract.Hex(), s.cfg.Hermes.Hex())
	}
	quoted := minBig(r.Quote.Fees.Settle, s.cfg.Fees.Settle)
	if st.Promise.Fee.Cmp(quoted) < 0 {
		return TxResponse{}, fail(http.StatusPaymentRequired, CodeFeeTooLow, "promise fee %s below the quoted %s", st.Promise.Fee, quoted)
	}
	h, err := s.cfg.Chain.HermesState(ctx, st.Contract)
	if err != nil {
		return TxResponse{}, chainErr("hermes state", err)
	}
	signer, err := st.Signer()
	if err != nil || signer != h.Operator {
		return TxResponse{}, fail(http.StatusUnprocessableEntity, CodeRefused, "promise not signed by the hermes operator %s", h.Operator.Hex())
	}
	ok, err := s.cfg.Chain.IsRegistered(ctx, st.Provider)
	if err != nil {
		return TxResponse{}, chainErr("registration", err)
	}
	if !ok {
		return TxResponse{}, &Error{Status: http.StatusConflict, Code: CodeConflict, Err: fmt.Errorf("transactor: provider %s: %w", st.Provider.Hex(), chain.ErrNotRegistered)}
	}
	pc, err := s.cfg.Chain.ProviderChannel(ctx, st.Contract, st.Provider)
	if err != nil {
		return TxResponse{}, chainErr("provider channel", err)
	}
	if _, err := chain.ProviderPayoutOf(st.Promise, pc, h); err != nil {
		return TxResponse{}, &Error{Status: http.StatusUnprocessableEntity, Code: CodeRefused, Err: fmt.Errorf("transactor: settlement: %w", err)}
	}
	rc, err := s.cfg.Chain.Settle(ctx, st)
	if err != nil {
		return TxResponse{}, chainErr("settle", err)
	}
	s.cfg.Log.Info("transactor: settled provider promise", "provider", st.Provider.Hex(), "fee", st.Promise.Fee, "tx", rc.TxHash.Hex())
	return TxResponse{Tx: rc.TxHash}, nil
}

// Redeem honours a voucher once: it records the redemption durably, moves
// the voucher's top-up from the sponsor's allowance into the consumer's
// channel and registers the consumer with a zero fee.
func (s *Service) Redeem(ctx context.Context, r RedeemRequest) (TxResponse, error) {
	if s.cfg.Store == nil {
		return TxResponse{}, fail(http.StatusNotFound, CodeDisabled, "voucher redemption is not enabled on this transactor")
	}
	v, err := DecodeVoucher(r.Voucher)
	if err != nil {
		return TxResponse{}, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Err: err}
	}
	if v.ChainID != s.chainID || v.Transactor != s.addr {
		return TxResponse{}, fail(http.StatusBadRequest, CodeBadRequest, "voucher is for chain %d transactor %s", v.ChainID, v.Transactor.Hex())
	}
	now := s.cfg.Now()
	if !now.Before(v.Expires) {
		return TxResponse{}, fail(http.StatusGone, CodeVoucherExpired, "voucher expired at %s", v.Expires.UTC().Format(time.RFC3339))
	}
	if r.Hermes != s.cfg.Hermes {
		return TxResponse{}, fail(http.StatusBadRequest, CodeBadRequest, "hermes %s is not this transactor's (%s)", r.Hermes.Hex(), s.cfg.Hermes.Hex())
	}
	zero := new(big.Int)
	if err := checkSigner(chain.RegisterDigest(new(big.Int).SetUint64(s.chainID), s.dep.Registry, r.Identity, r.Hermes, zero, r.Beneficiary), r.Signature, r.Identity, "registration"); err != nil {
		return TxResponse{}, err
	}
	if err := s.checkUnregistered(ctx, r.Identity); err != nil {
		return TxResponse{}, err
	}
	if v.Amount.Sign() > 0 {
		allow, err := s.cfg.Chain.TokenAllowance(ctx, v.Sponsor, s.addr)
		if err != nil {
			return TxResponse{}, chainErr("sponsor allowance", err)
		}
		bal, err := s.cfg.Chain.TokenBalance(ctx, v.Sponsor)
		if err != nil {
			return TxResponse{}, chainErr("sponsor balance", err)
		}
		if allow.Cmp(v.Amount) < 0 || bal.Cmp(v.Amount) < 0 {
			return TxResponse{}, fail(http.StatusPaymentRequired, CodeSponsorBudget, "sponsor %s has %s MYST wei and allows the transactor %s, the voucher needs %s", v.Sponsor.Hex(), bal, allow, v.Amount)
		}
	}
	if err := s.cfg.Store.Claim(ctx, v, r.Identity, s.cfg.MaxVouchersPerSponsor, now); err != nil {
		switch {
		case errors.Is(err, ErrRedeemed):
			return TxResponse{}, &Error{Status: http.StatusConflict, Code: CodeRedeemed, Err: err}
		case errors.Is(err, ErrSponsorCap):
			return TxResponse{}, &Error{Status: http.StatusForbidden, Code: CodeSponsorCap, Err: err}
		}
		return TxResponse{}, &Error{Status: http.StatusInternalServerError, Code: CodeChain, Err: err}
	}
	channel := s.cfg.Chain.ChannelAddress(r.Identity, r.Hermes)
	out := TxResponse{Channel: &channel}
	if v.Amount.Sign() > 0 {
		var rc *types.Receipt
		if rc, err = s.cfg.Chain.TransferFrom(ctx, v.Sponsor, channel, v.Amount); err != nil {
			// Nothing moved: the voucher stays redeemable.
			if rerr := s.cfg.Store.Release(context.WithoutCancel(ctx), v.ID); rerr != nil {
				s.cfg.Log.Error("transactor: release voucher claim", "err", rerr)
			}
			return TxResponse{}, chainErr("voucher top-up", err)
		}
		h := rc.TxHash
		out.TopUpTx = &h
	}
	rc, err := s.cfg.Chain.RelayRegisterIdentity(ctx, r.Identity, r.Hermes, zero, r.Beneficiary, r.Signature)
	if err != nil {
		state := StateFailed
		if out.TopUpTx == nil {
			state = ""
		}
		s.finish(ctx, v.ID, state)
		return TxResponse{}, chainErr("register", err)
	}
	s.finish(ctx, v.ID, StateDone)
	out.Tx = rc.TxHash
	s.cfg.Log.Info("transactor: voucher redeemed", "sponsor", v.Sponsor.Hex(), "identity", r.Identity.Hex(), "amount", v.Amount)
	return out, nil
}

// finish records a redemption's outcome; "" releases the claim.
func (s *Service) finish(ctx context.Context, id [16]byte, state string) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if state == "" {
		err = s.cfg.Store.Release(ctx, id)
	} else {
		err = s.cfg.Store.SetState(ctx, id, state)
	}
	if err != nil {
		s.cfg.Log.Error("transactor: record voucher outcome", "state", state, "err", err)
	}
}

func minBig(a, b *big.Int) *big.Int {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}
