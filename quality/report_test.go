package quality

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// channelOf is the test's stand-in for a consumer's channel id.
func channelOf(consumer common.Address) [32]byte {
	return crypto.Keccak256Hash([]byte("channel"), consumer[:])
}

// evidence is an exchange message of consumer paying provider total wei
// (the channel's cumulative promise is promised).
func evidence(t testing.TB, consumer identity.Signer, provider common.Address, total, promised int64) *payments.ExchangeMessage {
	t.Helper()
	em := &payments.ExchangeMessage{
		Promise: payments.Promise{ChainID: big.NewInt(testChain), ChannelID: channelOf(consumer.Address()), Amount: big.NewInt(promised),
			Fee: big.NewInt(0), Hashlock: payments.Hashlock([]byte("r"))},
		AgreementID: big.NewInt(7), AgreementTotal: big.NewInt(total), Provider: provider, HermesID: testHermes, ChainID: big.NewInt(testChain),
	}
	if err := em.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	return em
}

// report returns a signed report of consumer on provider at now: a paid
// session (paid > 0, with evidence) or an unpaid failure.
func report(t testing.TB, consumer identity.Signer, provider common.Address, now time.Time, outcome Outcome, paid int64, connectMs, tput uint64) SignedReport {
	t.Helper()
	r := Report{
		Version: ReportVersion, ChainID: testChain, Consumer: consumer.Address(), Provider: provider, Hermes: testHermes,
		ProposalSeq: 1, Outcome: outcome, ConnectMs: connectMs, Throughput: tput, DurationMs: 60_000, Bytes: 1 << 20,
		Paid: money.MustAmount(big.NewInt(paid)), IssuedAt: now.Unix(),
	}
	if paid > 0 {
		r.Evidence = evidence(t, consumer, provider, paid, paid)
	}
	sr, err := SignReport(r, consumer)
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

func TestReportRoundTripAndForgeries(t *testing.T) {
	c, p, other := keytest.Signer(t), keytest.Signer(t), keytest.Signer(t)
	now := time.Now()
	for _, sr := range []SignedReport{report(t, c, p.Address(), now, OutcomeConnected, 5e15, 120, 1e6), report(t, c, p.Address(), now, OutcomeUnreachable, 0, 0, 0)} {
		raw, err := sr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > MaxReportSize {
			t.Fatalf("report is %d bytes", len(raw))
		}
		got, err := DecodeReport(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID() != sr.ID() {
			t.Fatal("id changed in the round trip")
		}
	}
	good := report(t, c, p.Address(), now, OutcomeConnected, 5e15, 120, 1e6)
	resign := func(r Report, s identity.Signer) SignedReport {
		d, _ := r.Digest()
		sig, _ := s.Sign(d[:])
		return SignedReport{Report: r, Signature: sig}
	}
	forgedSig := resign(good.Report, other) // claims to be c, signed by other
	otherPays := good.Report
	otherPays.Evidence = evidence(t, other, p.Address(), 5e15, 5e15) // someone else's payment
	paidMismatch := good.Report
	paidMismatch.Paid = money.MustAmount(big.NewInt(6e15))
	wrongProvider := good.Report
	wrongProvider.Evidence = evidence(t, c, other.Address(), 5e15, 5e15)
	unpaidClaim := good.Report
	unpaidClaim.Evidence = nil
	self := good.Report
	self.Provider = c.Address()
	self.Evidence = nil
	self.Paid = money.MustAmount(new(big.Int))
	for name, sr := range map[string]SignedReport{
		"signed by another key":        forgedSig,
		"evidence of another consumer": resign(otherPays, c),
		"paid differs from evidence":   resign(paidMismatch, c),
		"evidence pays someone else":   resign(wrongProvider, c),
		"paid without evidence":        resign(unpaidClaim, c),
		"report on itself":             resign(self, c),
	} {
		raw, _ := sr.Encode()
		if _, err := DecodeReport(raw); !errors.Is(err, ErrInvalidReport) {
			t.Errorf("%s: decoded (%v)", name, err)
		}
	}
	raw, _ := good.Encode()
	for name, bad := range map[string]string{
		"unknown field": strings.Replace(string(raw), `{"report":{`, `{"report":{"x":1,`, 1),
		"trailing":      string(raw) + "{}",
		"outcome":       strings.Replace(string(raw), `"connected"`, `"great"`, 1),
		"oversized":     string(raw) + strings.Repeat(" ", MaxReportSize),
	} {
		if _, err := DecodeReport([]byte(bad)); !errors.Is(err, ErrInvalidReport) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeReport(f *testing.F) {
	c, p := keytest.Signer(f), keytest.Signer(f)
	for _, sr := range []SignedReport{report(f, c, p.Address(), time.Unix(1_800_000_000, 0), OutcomeConnected, 5e15, 120, 1e6),
		report(f, c, p.Address(), time.Unix(1_800_000_000, 0), OutcomeRefused, 0, 0, 0)} {
		raw, err := sr.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"report":null,"signature":"0x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sr, err := DecodeReport(data)
		if err != nil {
			return
		}
		raw, err := sr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeReport(raw)
		if err != nil || again.ID() != sr.ID() {
			t.Fatalf("re-encoded report: %v", err)
		}
	})
}
