package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	hclient "github.com/openmyst/openmyst/hermes/client"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// HermesTLS is how a node trusts its hermes's HTTPS API.
type HermesTLS struct {
	// CA verifies the hermes's certificate (nil: the system pool).
	CA *x509.CertPool
	// AllowInsecureHTTP permits a plain http:// hermes URL to a host that
	// is not loopback (never needed on a devnet, which is loopback).
	AllowInsecureHTTP bool
}

// LoadHermesTLS returns the HermesTLS of a PEM CA bundle file (empty
// path: the system pool).
func LoadHermesTLS(caFile string, allowInsecureHTTP bool) (HermesTLS, error) {
	t := HermesTLS{AllowInsecureHTTP: allowInsecureHTTP}
	if caFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return t, fmt.Errorf("node: hermes CA: %w", err)
	}
	t.CA = x509.NewCertPool()
	if !t.CA.AppendCertsFromPEM(pem) {
		return t, errors.New("node: hermes CA: " + caFile + " holds no PEM certificate")
	}
	return t, nil
}

// HermesTerms is hclient.Chain over the chain client: the hermes's
// operator and fee as registered on chain.
type HermesTerms struct{ C *chain.Client }

// HermesTerms implements hclient.Chain.
func (h HermesTerms) HermesTerms(ctx context.Context, hermes common.Address) (hclient.Terms, error) {
	t, err := h.C.HermesTerms(ctx, hermes)
	if err != nil {
		return hclient.Terms{}, err
	}
	return hclient.Terms{
		ChainID: h.C.ChainID(), Operator: t.Operator, FeeBps: t.FeeBps, PendingFeeBps: t.PendingFeeBps,
		FeeEffectiveAt: t.FeeEffectiveAt, FeeNoticeDelay: t.FeeNoticeDelay, ChainTime: t.BlockTime,
	}, nil
}

// ProviderSettlement implements hclient.Chain with chain.ProviderPayoutNow,
// the Go twin of the contract's settlement arithmetic.
func (h HermesTerms) ProviderSettlement(ctx context.Context, hermes, provider common.Address, p payments.Promise) error {
	_, err := h.C.ProviderPayoutNow(ctx, hermes, provider, p)
	if err == nil {
		return nil
	}
	for _, refusal := range []error{chain.ErrNothingToSettle, chain.ErrFeeAboveAmount, chain.ErrInsufficientHermesBalance,
		chain.ErrZeroChannelLimit, chain.ErrAmountTooLarge, chain.ErrNotActive, money.ErrBadAmount} {
		if errors.Is(err, refusal) {
			return fmt.Errorf("%w: %w", hclient.ErrNotSettleable, err)
		}
	}
	return err
}

var _ hclient.Chain = HermesTerms{}
