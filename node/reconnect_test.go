package node

import (
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
)

// TestPickReconnect: excluded providers never, just-failed ones only as a
// last resort.
func TestPickReconnect(t *testing.T) {
	a, b, c := common.HexToAddress("0x01"), common.HexToAddress("0x02"), common.HexToAddress("0x03")
	ps := []market.Proposal{{ProviderID: a}, {ProviderID: b}, {ProviderID: c}}
	f := market.Filter{Sort: market.SortProvider}
	pick := func(exclude, avoid map[common.Address]bool) common.Address {
		t.Helper()
		p, err := pickReconnect(ps, f, exclude, avoid)
		if err != nil {
			return common.Address{}
		}
		return p.ProviderID
	}
	if got := pick(nil, nil); got != a {
		t.Fatalf("no constraints: %s, want %s", got, a)
	}
	if got := pick(nil, map[common.Address]bool{a: true}); got != b {
		t.Fatalf("a just failed: %s, want %s", got, b)
	}
	if got := pick(map[common.Address]bool{b: true}, map[common.Address]bool{a: true}); got != c {
		t.Fatalf("a failed, b overcharged: %s, want %s", got, c)
	}
	if got := pick(map[common.Address]bool{b: true, c: true}, map[common.Address]bool{a: true}); got != a {
		t.Fatalf("only the failed one is left: %s, want %s", got, a)
	}
	if _, err := pickReconnect(ps, f, map[common.Address]bool{a: true, b: true, c: true}, nil); !errors.Is(err, consumer.ErrNoProposal) {
		t.Fatalf("all excluded: %v, want ErrNoProposal", err)
	}
}
