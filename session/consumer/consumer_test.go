package consumer

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p/sessionproto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func proposal(country string, perGiB int64) market.Proposal {
	now := time.Now()
	return market.Proposal{
		Version: market.ProposalVersion, ChainID: 1337, ProviderID: common.BigToAddress(big.NewInt(perGiB + 1)), PeerID: "12D3KooWtest",
		ServiceType: market.ServiceWireGuard, Location: market.Location{Country: country, IPType: market.IPResidential},
		Price:  market.Price{PerHour: market.NewAmount(big.NewInt(1)), PerGiB: market.NewAmount(big.NewInt(perGiB))},
		Hermes: []common.Address{common.HexToAddress("0x4e")}, Access: market.AccessPolicy{Kind: market.AccessPublic},
		Seq: 1, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
	}
}

func TestPick(t *testing.T) {
	ps := []market.Proposal{proposal("DE", 30), proposal("US", 10), proposal("DE", 20)}
	p, err := Pick(ps, market.Filter{Country: "DE"})
	if err != nil || p.Location.Country != "DE" || p.Price.PerGiB.Int().Int64() != 20 {
		t.Fatalf("picked %+v %v, want the cheapest DE proposal", p, err)
	}
	if _, err := Pick(ps, market.Filter{Country: "FR"}); !errors.Is(err, ErrNoProposal) {
		t.Fatalf("no FR proposal: %v", err)
	}
}

type ledger struct{}

func (ledger) ID() [32]byte { return [32]byte{1} }
func (ledger) Raise(context.Context, *big.Int) (*big.Int, error) {
	return nil, errors.New("nothing may be promised in this test")
}

// TestRefusedRequest: a provider's Error (or anything but a response)
// ends the connect attempt, and the request the provider saw is signed by
// the consumer at the proposal's price and sequence number.
func TestRefusedRequest(t *testing.T) {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := identity.NewKeySigner(k)
	if _, err := New(Config{Signer: s, ChainID: big.NewInt(1337), Hermes: common.HexToAddress("0x4e"), Channel: ledger{}}); err == nil {
		t.Fatal("a manager without a host was made")
	}
	m := &Manager{cfg: Config{Signer: s, ChainID: big.NewInt(1337), Hermes: common.HexToAddress("0x4e"), Channel: ledger{}}, log: slog.New(slog.DiscardHandler)}
	p := proposal("DE", 20)
	for _, answer := range []sessionproto.Message{
		&sessionproto.Error{Code: sessionproto.CodeInsufficientFunds, Message: "empty channel"},
		&sessionproto.Keepalive{Seq: 1},
	} {
		a, b := net.Pipe()
		seen := make(chan *sessionproto.SessionRequest, 1)
		go func() {
			defer b.Close()
			r, w := sessionproto.NewReader(b, time.Second), sessionproto.NewWriter(b, time.Second)
			msg, err := r.ReadMessage(context.Background())
			if err != nil {
				seen <- nil
				return
			}
			req, _ := msg.(*sessionproto.SessionRequest)
			seen <- req
			_ = w.WriteMessage(context.Background(), answer)
		}()
		_, err := m.open(context.Background(), a, p, Options{})
		a.Close()
		req := <-seen
		if req == nil || req.VerifySignature() != nil || req.Consumer != s.Address() || req.PricePerGiB.Big().Int64() != 20 || req.ProposalSeq != 1 {
			t.Fatalf("provider saw request %+v", req)
		}
		if answer.Type() == sessionproto.TypeError {
			var perr *sessionproto.Error
			if !errors.As(err, &perr) || perr.Code != sessionproto.CodeInsufficientFunds {
				t.Fatalf("open returned %v, want the provider's insufficient_funds", err)
			}
		} else if err == nil {
			t.Fatal("open accepted a keepalive as the response")
		}
	}
}
