package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/internal/atomicfile"
	"github.com/openmyst/openmyst/internal/strictjson"
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

// The steps of a deployment, in order: each sends one contract creation.
const (
	StepToken    = "token"
	StepRegistry = "registry"
)

var deploySteps = []string{StepToken, StepRegistry}

// DeployStep is the durable record of one step of a deployment. It is
// saved when the step's transaction is signed, before it is broadcast, and
// again once it is mined.
type DeployStep struct {
	// Name is the step (StepToken, StepRegistry).
	Name string `json:"name"`
	// Nonce is the deployer's nonce the creation was signed with.
	Nonce uint64 `json:"nonce"`
	// Address is the contract the creation makes (deployer and nonce).
	Address common.Address `json:"address"`
	// Tx is the hash of the transaction: its first version while it is
	// pending, the mined version once known.
	Tx common.Hash `json:"tx"`
	// SentAtBlock is the chain head when it was sent: no version can be
	// mined before it.
	SentAtBlock uint64 `json:"sentAtBlock"`
	// Mined says the contract exists; Block is the block it was mined in
	// (SentAtBlock when a restart found the contract but not the version
	// that created it: a lower bound).
	Mined bool   `json:"mined"`
	Block uint64 `json:"block"`
}

// deployParamsRecord is DeployParams as a progress file keeps them: a
// rerun with other parameters is refused.
type deployParamsRecord struct {
	Faucet                bool           `json:"faucet"`
	Supply                string         `json:"supply"`
	Holder                common.Address `json:"holder"`
	MinHermesStake        string         `json:"minHermesStake"`
	ExitTimelockSeconds   uint64         `json:"exitTimelockSeconds"`
	FeeNoticeDelaySeconds uint64         `json:"feeNoticeDelaySeconds"`
}

// DeployProgress is a deployment under way (or done), as its progress
// file keeps it: which account deploys what on which chain, and each step
// sent so far.
type DeployProgress struct {
	ChainID  uint64             `json:"chainId"`
	Deployer common.Address     `json:"deployer"`
	Params   deployParamsRecord `json:"params"`
	Steps    []DeployStep       `json:"steps"`
}

// maxDeployProgress bounds a progress file.
const maxDeployProgress = 16 << 10

// DecodeDeployProgress parses a progress file strictly: unknown fields,
// trailing data, unknown or out-of-order steps and missing addresses are
// refused.
func DecodeDeployProgress(data []byte) (DeployProgress, error) {
	return strictjson.Decode(data, maxDeployProgress, "chain: deploy progress", func(p *DeployProgress) error {
		if p.ChainID == 0 || p.Deployer == (common.Address{}) {
			return errors.New("chain: deploy progress: chainId or deployer is missing")
		}
		for _, v := range []string{p.Params.Supply, p.Params.MinHermesStake} {
			if n, ok := new(big.Int).SetString(v, 10); !ok || n.Sign() < 0 {
				return fmt.Errorf("chain: deploy progress: amount %q is not a decimal wei amount", v)
			}
		}
		if len(p.Steps) > len(deploySteps) {
			return fmt.Errorf("chain: deploy progress: %d steps, at most %d", len(p.Steps), len(deploySteps))
		}
		for i, s := range p.Steps {
			if s.Name != deploySteps[i] {
				return fmt.Errorf("chain: deploy progress: step %d is %q, want %q", i, s.Name, deploySteps[i])
			}
			if s.Address == (common.Address{}) || s.Tx == (common.Hash{}) {
				return fmt.Errorf("chain: deploy progress: step %q lacks its address or transaction", s.Name)
			}
			if i > 0 && !p.Steps[i-1].Mined {
				return fmt.Errorf("chain: deploy progress: step %q follows an unmined step", s.Name)
			}
		}
		return nil
	})
}

// Done says every step is mined.
func (p DeployProgress) Done() bool {
	return len(p.Steps) == len(deploySteps) && p.Steps[len(p.Steps)-1].Mined
}

// LoadDeployProgress reads the progress file at path; ok is false when
// there is none.
func LoadDeployProgress(path string) (p DeployProgress, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DeployProgress{}, false, nil
	}
	if err != nil {
		return DeployProgress{}, false, fmt.Errorf("chain: read deploy progress: %w", err)
	}
	p, err = DecodeDeployProgress(data)
	if err != nil {
		return DeployProgress{}, false, fmt.Errorf("%w (file %s)", err, path)
	}
	return p, true, nil
}

// save writes p to path atomically (temp file, fsync, rename); "" keeps
// it in memory only.
func (p DeployProgress) save(path string) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("chain: encode deploy progress: %w", err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("chain: save deploy progress: %w", err)
	}
	return nil
}

// Deploy deploys the token and the registry (which creates the channel and
// hermes implementations) from tx, and returns the deployment. A hermes is
// registered separately (RegisterHermes). Its progress is kept in memory
// only (see DeployResumable).
func Deploy(ctx context.Context, tx *Transactor, p DeployParams) (Deployment, error) {
	dep, _, err := DeployResumable(ctx, tx, p, "", nil)
	return dep, err
}

// DeployResumable is Deploy keeping its progress in the file at path: each
// step's nonce, contract address and transaction are saved before the
// transaction is broadcast, and saved again once it is mined. A run on an
// existing file continues it: it first finishes what tx's pending store
// holds (Resume, same nonces), then skips the mined steps and sends only
// the ones left. With a PendingLock the store is held until it returns, so
// a concurrent deploy from the same key waits and then continues (or
// finds done) what this one recorded. A step whose transaction was sent
// but created no contract (it failed, or never left) is sent again. A
// file of another chain, deployer or parameters is refused. When the file says the
// deployment is complete, nothing is sent and done is true. onStep (may be
// nil) hears each step mined in this run.
func DeployResumable(ctx context.Context, tx *Transactor, p DeployParams, path string, onStep func(DeployStep)) (dep Deployment, done bool, err error) {
	rec, err := paramsRecord(tx, p)
	if err != nil {
		return Deployment{}, false, err
	}
	want := DeployProgress{ChainID: tx.ChainID().Uint64(), Deployer: tx.Address(), Params: rec}
	if _, _, err := loadProgress(path, want); err != nil {
		return Deployment{}, false, err // refused before anything is sent
	}
	// The deployer's pending store is held for the whole run: a second
	// deploy on the same data dir and key waits, then finds this one's
	// progress. Taking it finishes what a killed run left pending, under
	// its nonce, before anything is decided: its step may be the one it
	// creates.
	resumed, resumeErr, release, err := tx.hold(ctx)
	if err != nil {
		return Deployment{}, false, fmt.Errorf("chain: deploy: %w", err)
	}
	defer release()
	if resumeErr == nil {
		// A plain store (no lock) is resumed here; with the lock held
		// this returns at once.
		var rs []*types.Receipt
		rs, resumeErr = tx.Resume(ctx)
		resumed = append(resumed, rs...)
	}
	if resumeErr != nil {
		return Deployment{}, false, fmt.Errorf("chain: deploy: finish the transactions left pending first: %w", resumeErr)
	}
	prog, done, err := loadProgress(path, want)
	if err != nil {
		return Deployment{}, false, err
	}
	d := &deployRun{tx: tx, path: path, prog: prog}
	for i, name := range deploySteps {
		if i < len(d.prog.Steps) && !d.prog.Steps[i].Mined {
			if err := d.check(ctx, i, resumed); err != nil {
				return Deployment{}, false, err
			}
		}
		if i < len(d.prog.Steps) && d.prog.Steps[i].Mined {
			continue
		}
		if err := ctx.Err(); err != nil {
			return Deployment{}, false, fmt.Errorf("chain: deploy %s: %w", name, err)
		}
		if err := d.send(ctx, i, p); err != nil {
			return Deployment{}, false, err
		}
		if onStep != nil {
			onStep(d.prog.Steps[i])
		}
	}
	dep, err = d.deployment(ctx)
	return dep, done, err
}

// loadProgress is the progress file at path ("": none) if it records the
// deployment want describes (else an error), or want; done says it is
// complete.
func loadProgress(path string, want DeployProgress) (p DeployProgress, done bool, err error) {
	if path == "" {
		return want, false, nil
	}
	prev, ok, err := LoadDeployProgress(path)
	if err != nil || !ok {
		return want, false, err
	}
	if err := want.sameDeployment(prev); err != nil {
		return want, false, fmt.Errorf("%w; finish it with the same account, chain and flags, or deploy a new set elsewhere (progress file %s)", err, path)
	}
	return prev, prev.Done(), nil
}

// paramsRecord is p with its defaults filled in, as a progress file keeps it.
func paramsRecord(tx *Transactor, p DeployParams) (deployParamsRecord, error) {
	if p.ExitTimelock < 0 || p.FeeNoticeDelay < 0 {
		return deployParamsRecord{}, fmt.Errorf("chain: deploy: negative delay")
	}
	holder := p.Holder
	if holder == (common.Address{}) {
		holder = tx.Address()
	}
	return deployParamsRecord{
		Faucet: p.Faucet, Supply: orZero(p.Supply).String(), Holder: holder, MinHermesStake: orZero(p.MinHermesStake).String(),
		ExitTimelockSeconds: uint64(p.ExitTimelock / time.Second), FeeNoticeDelaySeconds: uint64(p.FeeNoticeDelay / time.Second),
	}, nil
}

// sameDeployment says whether prev (a progress file) is the deployment p
// describes.
func (p DeployProgress) sameDeployment(prev DeployProgress) error {
	switch {
	case prev.ChainID != p.ChainID:
		return fmt.Errorf("chain: deploy: a deployment on chain %d is in progress, this is chain %d", prev.ChainID, p.ChainID)
	case prev.Deployer != p.Deployer:
		return fmt.Errorf("chain: deploy: a deployment by %s is in progress, this key is %s", prev.Deployer.Hex(), p.Deployer.Hex())
	case prev.Params != p.Params:
		return fmt.Errorf("chain: deploy: a deployment with other parameters is in progress (%+v, now %+v)", prev.Params, p.Params)
	}
	return nil
}

type deployRun struct {
	tx   *Transactor
	path string
	prog DeployProgress
}

// check settles step i, sent by an earlier run and not known mined: mined
// when its contract exists (recorded), else dropped so that it is sent
// again, unless its nonce is pending in the node's pool outside tx's
// pending store, where it could still create the contract.
func (d *deployRun) check(ctx context.Context, i int, resumed []*types.Receipt) error {
	s := &d.prog.Steps[i]
	b := d.tx.Backend()
	code, err := b.CodeAt(ctx, s.Address, nil)
	if err != nil {
		return fmt.Errorf("chain: deploy %s: read code at %s: %w", s.Name, s.Address.Hex(), err)
	}
	if len(code) > 0 {
		s.Mined, s.Block = true, s.SentAtBlock
		for _, r := range resumed {
			if r.ContractAddress == s.Address && r.Status == types.ReceiptStatusSuccessful {
				s.Tx, s.Block = r.TxHash, r.BlockNumber.Uint64()
			}
		}
		if s.Block == s.SentAtBlock {
			if r, err := b.TransactionReceipt(ctx, s.Tx); err == nil && r != nil {
				s.Block = r.BlockNumber.Uint64()
			}
		}
		d.tx.log.Info("chain: deploy: step mined by an earlier run", "step", s.Name, "address", s.Address.Hex(), "nonce", s.Nonce, "block", s.Block)
		return d.prog.save(d.path)
	}
	mined, err := b.NonceAt(ctx, d.tx.Address(), nil)
	if err != nil {
		return fmt.Errorf("chain: deploy %s: read nonce: %w", s.Name, err)
	}
	if mined <= s.Nonce {
		pending, err := b.PendingNonceAt(ctx, d.tx.Address())
		if err != nil {
			return fmt.Errorf("chain: deploy %s: read pending nonce: %w", s.Name, err)
		}
		if pending > s.Nonce {
			return fmt.Errorf("chain: deploy %s: a transaction with its nonce %d is pending in the node's pool but not in this data dir's pending file (another data dir or process?); rerun once it is mined or dropped", s.Name, s.Nonce)
		}
	}
	d.tx.log.Warn("chain: deploy: step sent by an earlier run created no contract; sending it again", "step", s.Name, "nonce", s.Nonce, "tx", s.Tx.Hex())
	d.prog.Steps = d.prog.Steps[:i]
	return d.prog.save(d.path)
}

// send sends step i, saving its record before the broadcast and once mined.
func (d *deployRun) send(ctx context.Context, i int, p DeployParams) error {
	name := deploySteps[i]
	b := d.tx.Backend()
	head, err := b.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("chain: deploy %s: read head: %w", name, err)
	}
	pr := d.prog.Params
	r, err := d.tx.Send(ctx, "deploy "+name, func(o *bind.TransactOpts) (*types.Transaction, error) {
		var (
			addr common.Address
			t    *types.Transaction
			err  error
		)
		switch name {
		case StepToken:
			addr, t, _, err = bindings.DeployMystToken(o, b, pr.Faucet, pr.Holder, orZero(p.Supply))
		case StepRegistry:
			addr, t, _, err = bindings.DeployRegistry(o, b, d.prog.Steps[0].Address, orZero(p.MinHermesStake), pr.ExitTimelockSeconds, pr.FeeNoticeDelaySeconds)
		}
		if err != nil {
			return nil, err
		}
		// Recorded before the Transactor stores and broadcasts it: a
		// rerun knows which nonce and address this step took.
		d.prog.Steps = append(d.prog.Steps[:i], DeployStep{Name: name, Nonce: t.Nonce(), Address: addr, Tx: t.Hash(), SentAtBlock: head.Number.Uint64()})
		if err := d.prog.save(d.path); err != nil {
			return nil, err
		}
		return t, nil
	})
	if err != nil {
		return err
	}
	s := &d.prog.Steps[i]
	if r.ContractAddress != s.Address {
		return fmt.Errorf("chain: deploy %s: created %s, expected %s", name, r.ContractAddress.Hex(), s.Address.Hex())
	}
	s.Mined, s.Tx, s.Block = true, r.TxHash, r.BlockNumber.Uint64()
	return d.prog.save(d.path)
}

// deployment is the deployment of the mined steps.
func (d *deployRun) deployment(ctx context.Context) (Deployment, error) {
	regAddr := d.prog.Steps[1].Address
	reg, err := bindings.NewRegistry(regAddr, d.tx.Backend())
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
		ChainID:               d.prog.ChainID,
		Token:                 d.prog.Steps[0].Address,
		Registry:              regAddr,
		ChannelImplementation: chImpl,
		HermesImplementation:  hImpl,
		Faucet:                d.prog.Params.Faucet,
		DeployBlock:           d.prog.Steps[1].Block,
	}, nil
}
