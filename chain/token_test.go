package chain

import (
	"errors"
	"log/slog"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
)

// permitDigest is the EIP-712 digest of an EIP-2612 permit, computed
// independently of the contract.
func permitDigest(chainID *big.Int, token, owner, spender common.Address, value, nonce, deadline *big.Int) common.Hash {
	domainType := crypto.Keccak256([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	domain := crypto.Keccak256(domainType, crypto.Keccak256([]byte("MYST")), crypto.Keccak256([]byte("1")),
		math.U256Bytes(new(big.Int).Set(chainID)), common.LeftPadBytes(token.Bytes(), 32))
	permitType := crypto.Keccak256([]byte("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"))
	st := crypto.Keccak256(permitType, common.LeftPadBytes(owner.Bytes(), 32), common.LeftPadBytes(spender.Bytes(), 32),
		math.U256Bytes(new(big.Int).Set(value)), math.U256Bytes(new(big.Int).Set(nonce)), math.U256Bytes(new(big.Int).Set(deadline)))
	return crypto.Keccak256Hash([]byte("\x19\x01"), domain, st)
}

func TestTokenPermit(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	ownerKey := keytest.Key(t)
	owner := crypto.PubkeyToAddress(ownerKey.PublicKey)
	spender := e.client.tx.Address()
	if _, err := e.client.Mint(e.ctx, owner, money.MYST(10)); err != nil {
		t.Fatal(err)
	}
	dec, err := e.client.token.Decimals(call(e.ctx))
	if err != nil || dec != money.Decimals {
		t.Fatalf("decimals %d (%v)", dec, err)
	}
	deadline := big.NewInt(1 << 40)
	permit := func(value, nonce, dl *big.Int) error {
		d := permitDigest(e.client.ChainID(), e.dep.Token, owner, spender, value, nonce, dl)
		sig, err := crypto.Sign(d[:], ownerKey)
		if err != nil {
			t.Fatal(err)
		}
		var r, s [32]byte
		copy(r[:], sig[:32])
		copy(s[:], sig[32:64])
		_, err = e.client.send(e.ctx, "permit", func(o *bind.TransactOpts) (*types.Transaction, error) {
			return e.client.token.Permit(o, owner, spender, value, dl, sig[64]+27, r, s)
		})
		return err
	}
	if err := permit(money.MYST(4), big.NewInt(0), deadline); err != nil {
		t.Fatalf("permit: %v", err)
	}
	if a, _ := e.client.token.Allowance(call(e.ctx), owner, spender); a.Cmp(money.MYST(4)) != 0 {
		t.Fatalf("allowance %s", money.FormatMYST(a))
	}
	// The spender moves the owner's MYST without the owner paying gas.
	if _, err := e.client.send(e.ctx, "transferFrom", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return e.client.token.TransferFrom(o, owner, spender, money.MYST(3))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.send(e.ctx, "transferFrom", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return e.client.token.TransferFrom(o, owner, spender, money.MYST(2))
	}); !errors.Is(err, ErrInsufficientAllowance) {
		t.Fatalf("over allowance: %v", err)
	}
	// Replaying the same permit (nonce 0 used) and an expired one fail.
	if err := permit(money.MYST(4), big.NewInt(0), deadline); !errors.Is(err, ErrPermit) {
		t.Fatalf("replayed permit: %v", err)
	}
	if err := permit(money.MYST(4), big.NewInt(1), big.NewInt(1)); !errors.Is(err, ErrPermit) {
		t.Fatalf("expired permit: %v", err)
	}
}

func TestHermesOperatorWithdrawAndDuplicateHermes(t *testing.T) {
	e := newEnv(t, hermesOpts{stake: money.MYST(10)})
	h := e.hermes
	// Nothing above the stake yet.
	hc, err := NewClient(e.ctx, e.backend, e.dep, e.opTx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := bindingsHermesFor(t, e)
	to := common.HexToAddress("0x00000000000000000000000000000000000f00d1")
	withdraw := func(c *Client, amount *big.Int) error {
		_, err := c.send(e.ctx, "hermes withdraw", func(o *bind.TransactOpts) (*types.Transaction, error) { return hb.Withdraw(o, to, amount) })
		return err
	}
	if err := withdraw(hc, money.MYST(1)); !errors.Is(err, ErrInsufficientHermesBalance) {
		t.Fatalf("withdraw the stake: %v", err)
	}
	if _, err := e.client.Mint(e.ctx, h, money.MYST(5)); err != nil {
		t.Fatal(err)
	}
	if err := withdraw(e.client, money.MYST(1)); !errors.Is(err, ErrNotOperator) {
		t.Fatalf("withdraw by stranger: %v", err)
	}
	if err := withdraw(hc, money.MYST(5)); err != nil {
		t.Fatalf("withdraw collected: %v", err)
	}
	wantBalance(t, e, to, money.MYST(5), "operator payout")
	// One hermes per operator.
	if _, err := e.client.Mint(e.ctx, e.opTx.Address(), money.MYST(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterHermes(e.ctx, e.opTx, e.dep, HermesParams{Stake: money.MYST(10), MinChannelStake: new(big.Int), MaxChannelStake: money.MYST(1)}); !errors.Is(err, ErrHermesExists) {
		t.Fatalf("second hermes: %v", err)
	}
	if _, err := RegisterHermes(e.ctx, e.client.tx, e.dep, HermesParams{Stake: money.MYST(1), MinChannelStake: new(big.Int), MaxChannelStake: money.MYST(1)}); !errors.Is(err, ErrHermesStakeTooLow) {
		t.Fatalf("low stake: %v", err)
	}
}

func TestRegisterHermesRejectsBadStakeRange(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	tx := e.client.tx
	if _, err := e.client.Mint(e.ctx, tx.Address(), money.MYST(100)); err != nil {
		t.Fatal(err)
	}
	tooBig := new(big.Int).Lsh(big.NewInt(1), 96) // above the uint96 stake field
	if _, err := RegisterHermes(e.ctx, tx, e.dep, HermesParams{Stake: money.MYST(10), MinChannelStake: new(big.Int), MaxChannelStake: tooBig}); !errors.Is(err, ErrStakeOutOfRange) {
		t.Fatalf("max stake above uint96: %v", err)
	}
	if _, err := RegisterHermes(e.ctx, tx, e.dep, HermesParams{Stake: money.MYST(10), MinChannelStake: money.MYST(2), MaxChannelStake: money.MYST(1)}); !errors.Is(err, ErrStakeOutOfRange) {
		t.Fatalf("min above max: %v", err)
	}
	if _, err := RegisterHermes(e.ctx, tx, e.dep, HermesParams{Stake: money.MYST(10), FeeBps: 2001, MinChannelStake: money.MYST(1), MaxChannelStake: money.MYST(2)}); !errors.Is(err, ErrFeeTooHigh) {
		t.Fatalf("fee above cap: %v", err)
	}
}
