package node

import (
	"errors"
	"testing"
	"time"

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

// TestRecentFailuresAvoided: a provider that failed this consumer is
// avoided while another matches, and quality order (kept by Pick for
// market.SortQuality) is otherwise followed.
func TestRecentFailuresAvoided(t *testing.T) {
	a, b := common.HexToAddress("0x01"), common.HexToAddress("0x02")
	ps := []market.Proposal{{ProviderID: b}, {ProviderID: a}} // quality order: b first
	f := market.Filter{Sort: market.SortQuality}
	c := &Consumer{}
	reported := 0
	onResult := c.onResult(func(consumer.Result) { reported++ })
	if p, err := pickReconnect(ps, f, nil, c.avoidRecent(nil)); err != nil || p.ProviderID != b {
		t.Fatalf("no failures: %v %v, want %s (the quality order)", p.ProviderID, err, b)
	}
	onResult(consumer.Result{Proposal: market.Proposal{ProviderID: b}, Stage: consumer.StageConnect, Err: errors.New("unreachable")})
	onResult(consumer.Result{Proposal: market.Proposal{ProviderID: a}, Stage: consumer.StageSession}) // a clean session
	if reported != 2 {
		t.Fatalf("%d results passed on to the reporter, want 2", reported)
	}
	if p, err := pickReconnect(ps, f, nil, c.avoidRecent(nil)); err != nil || p.ProviderID != a {
		t.Fatalf("b failed recently: picked %v (%v), want %s", p.ProviderID, err, a)
	}
	if p, err := pickReconnect(ps[:1], f, nil, c.avoidRecent(nil)); err != nil || p.ProviderID != b {
		t.Fatalf("only the failed provider matches: %v %v, want it anyway", p.ProviderID, err)
	}
	c.failed[b] = c.failed[b].Add(-RecentFailure - time.Second)
	if p, _ := pickReconnect(ps, f, nil, c.avoidRecent(nil)); p.ProviderID != b {
		t.Fatalf("b's failure is old: picked %v, want %s again", p.ProviderID, b)
	}
}

// TestAwaitOther: a tun connection waits for another proposal only when
// every known one is avoided (failed recently) or excluded and another
// provider could still match: not when the filter names the provider,
// whose connection (after a failed try) otherwise waited its whole
// proposal wait for nothing.
func TestAwaitOther(t *testing.T) {
	a, b := common.HexToAddress("0x01"), common.HexToAddress("0x02")
	ps := []market.Proposal{{ProviderID: a}}
	avoid := map[common.Address]bool{a: true}
	if !awaitOther(market.Filter{Country: "DE"}, ps, nil, avoid) {
		t.Error("only an avoided provider known, any provider matches: want to wait for another")
	}
	if awaitOther(market.Filter{ProviderID: a}, ps, nil, avoid) {
		t.Error("the filter names the avoided provider: nothing else can match, want no wait")
	}
	if awaitOther(market.Filter{}, append(ps, market.Proposal{ProviderID: b}), nil, avoid) {
		t.Error("another provider is pickable: want no wait")
	}
	if awaitOther(market.Filter{}, nil, nil, avoid) {
		t.Error("nothing known: the proposal wait itself applies, want no extra wait")
	}
}
