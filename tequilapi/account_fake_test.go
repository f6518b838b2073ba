package tequilapi

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
)

// fakeAccountChain is a read-only AccountChain with fixed state: the
// account routes need no *chain.Client. Write methods are left to the
// nil embedded interface (a call would panic the test).
type fakeAccountChain struct {
	AccountChain
	channel common.Address
}

func (f fakeAccountChain) ChainID() *big.Int                                 { return big.NewInt(4242) }
func (f fakeAccountChain) ChannelAddress(_, _ common.Address) common.Address { return f.channel }
func (f fakeAccountChain) IsRegistered(context.Context, common.Address) (bool, error) {
	return false, nil
}
func (f fakeAccountChain) ChannelState(_ context.Context, ch common.Address) (chain.ChannelState, error) {
	return chain.ChannelState{Address: ch, Deployed: true, Balance: big.NewInt(1_500_000_000_000_000_000), Settled: big.NewInt(0)}, nil
}
func (f fakeAccountChain) TokenBalance(context.Context, common.Address) (*big.Int, error) {
	return big.NewInt(7), nil
}
func (f fakeAccountChain) ProviderChannel(context.Context, common.Address, common.Address) (chain.ProviderChannelState, error) {
	return chain.ProviderChannelState{Settled: big.NewInt(0), Stake: big.NewInt(0)}, nil
}
func (f fakeAccountChain) Transactor() *chain.Transactor { return nil }

// TestAccountRoutesOnInterface: the account routes read through the
// AccountChain interface (here a fake), and refuse writes on a read-only
// one before any transaction.
func TestAccountRoutesOnInterface(t *testing.T) {
	e := newEnv(t, nil)
	hermes := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	fc := fakeAccountChain{channel: common.HexToAddress("0x00000000000000000000000000000000000000dd")}
	e.s.Add(AccountRoutes(e.ids, ChainSourceFunc(func(context.Context) (AccountChain, common.Address, error) {
		return fc, hermes, nil
	}), nil)...)
	tok := e.login(t)
	id := e.newIdentity(t)
	var a AccountDTO
	if r := e.do(t, "GET", "/identities/"+id.Hex()+"/account", tok, "", &a); r.StatusCode != 200 {
		t.Fatalf("GET account: %d", r.StatusCode)
	}
	if a.ChainID != 4242 || a.Hermes != hermes.Hex() || a.Channel != fc.channel.Hex() || a.ChannelBalance != "1.5" || a.TokenBalanceWei != "7" || a.Registered {
		t.Fatalf("account = %+v", a)
	}
	e.expectError(t, "POST", "/identities/"+id.Hex()+"/register", tok, "", 503, CodeChainUnavailable)
}
