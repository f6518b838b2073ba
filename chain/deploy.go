package chain

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain/bindings"
)

// DeployParams configures a deployment.
type DeployParams struct {
	// Faucet makes the token mintable by anyone (dev deployments only).
	Faucet bool
	// Supply is minted to Holder at deployment (may be zero with a faucet).
	Supply *big.Int
	// Holder receives Supply (defaults to the deployer).
	Holder common.Address
	// MinHermesStake is the least stake a hermes registers with.
	MinHermesStake *big.Int
	// ExitTimelock is how long a unilateral channel exit waits (whole seconds).
	ExitTimelock time.Duration
	// FeeNoticeDelay is how long a hermes fee change waits (whole seconds).
	FeeNoticeDelay time.Duration
}

// Deploy deploys the token and the registry (which creates the channel and
// hermes implementations) from tx, and returns the deployment. A hermes is
// registered separately (RegisterHermes).
func Deploy(ctx context.Context, tx *Transactor, p DeployParams) (Deployment, error) {
	supply := p.Supply
	if supply == nil {
		supply = new(big.Int)
	}
	holder := p.Holder
	if holder == (common.Address{}) {
		holder = tx.Address()
	}
	minStake := p.MinHermesStake
	if minStake == nil {
		minStake = new(big.Int)
	}
	if p.ExitTimelock < 0 || p.FeeNoticeDelay < 0 {
		return Deployment{}, fmt.Errorf("chain: deploy: negative delay")
	}
	var tokenAddr common.Address
	if _, err := tx.Send(ctx, "deploy token", func(o *bind.TransactOpts) (*types.Transaction, error) {
		a, t, _, err := bindings.DeployMystToken(o, tx.Backend(), p.Faucet, holder, supply)
		tokenAddr = a
		return t, err
	}); err != nil {
		return Deployment{}, err
	}
	var regAddr common.Address
	r, err := tx.Send(ctx, "deploy registry", func(o *bind.TransactOpts) (*types.Transaction, error) {
		a, t, _, err := bindings.DeployRegistry(o, tx.Backend(), tokenAddr, minStake, uint64(p.ExitTimelock/time.Second), uint64(p.FeeNoticeDelay/time.Second))
		regAddr = a
		return t, err
	})
	if err != nil {
		return Deployment{}, err
	}
	reg, err := bindings.NewRegistry(regAddr, tx.Backend())
	if err != nil {
		return Deployment{}, fmt.Errorf("chain: bind registry: %w", err)
	}
	o := &bind.CallOpts{Context: ctx}
	chImpl, err := reg.ChannelImplementation(o)
	if err != nil {
		return Deployment{}, wrapCallError("read channel implementation", err)
	}
	hImpl, err := reg.HermesImplementation(o)
	if err != nil {
		return Deployment{}, wrapCallError("read hermes implementation", err)
	}
	return Deployment{
		ChainID:               tx.ChainID().Uint64(),
		Token:                 tokenAddr,
		Registry:              regAddr,
		ChannelImplementation: chImpl,
		HermesImplementation:  hImpl,
		Faucet:                p.Faucet,
		DeployBlock:           r.BlockNumber.Uint64(),
	}, nil
}
