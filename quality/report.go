package quality

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// ReportVersion is the only report format version this code reads and
// writes.
const ReportVersion = 1

// MaxReportSize bounds an encoded SignedReport in bytes (a report with its
// evidence is about 1.3 KB).
const MaxReportSize = 3072

// Outcome is how a session or connection attempt ended for the consumer.
type Outcome string

// The outcomes a report may carry.
const (
	// OutcomeConnected: the tunnel came up and carried traffic.
	OutcomeConnected Outcome = "connected"
	// OutcomeUnreachable: the provider's control stream could not be opened.
	OutcomeUnreachable Outcome = "unreachable"
	// OutcomeHandshakeTimeout: the WireGuard handshake never completed.
	OutcomeHandshakeTimeout Outcome = "handshake_timeout"
	// OutcomeRefused: the provider answered the request with an error.
	OutcomeRefused Outcome = "refused"
	// OutcomeOvercharge: the consumer refused an invoice above the price.
	OutcomeOvercharge Outcome = "overcharge"
	// OutcomeStalled: the tunnel or the session stream stopped carrying
	// anything before the consumer ended the session.
	OutcomeStalled Outcome = "tunnel_stalled"
)

// Success reports whether the outcome counts as a success.
func (o Outcome) Success() bool { return o == OutcomeConnected }

func (o Outcome) valid() bool {
	switch o {
	case OutcomeConnected, OutcomeUnreachable, OutcomeHandshakeTimeout, OutcomeRefused, OutcomeOvercharge, OutcomeStalled:
		return true
	}
	return false
}

// Report is what a consumer measured of one session or failed attempt.
// Field order is the canonical encoding order; do not reorder.
type Report struct {
	// Version is ReportVersion.
	Version uint16 `json:"version"`
	// ChainID is the chain the consumer pays on.
	ChainID uint64 `json:"chain_id"`
	// Consumer is the reporting identity; it signs the report.
	Consumer common.Address `json:"consumer"`
	// Provider is the provider reported on.
	Provider common.Address `json:"provider"`
	// Hermes is the payment hub of the consumer's channel (its backing).
	Hermes common.Address `json:"hermes"`
	// ProposalSeq is the proposal the session was opened on.
	ProposalSeq uint64 `json:"proposal_seq"`
	// Outcome is how it ended.
	Outcome Outcome `json:"outcome"`
	// ConnectMs is connect → first byte through the tunnel, in ms (0 when
	// no byte came).
	ConnectMs uint64 `json:"connect_ms"`
	// Throughput is a throughput sample in bytes per second (0: none).
	Throughput uint64 `json:"throughput"`
	// DurationMs is the session length in ms.
	DurationMs uint64 `json:"duration_ms"`
	// Bytes is the tunnel traffic, up plus down.
	Bytes uint64 `json:"bytes"`
	// Paid is the agreement total paid to the provider, in wei; it must
	// equal Evidence's agreement total when Evidence is set.
	Paid money.Amount `json:"paid"`
	// IssuedAt is when the consumer signed, unix seconds.
	IssuedAt int64 `json:"issued_at"`
	// Evidence is the latest exchange message the consumer paid the
	// provider with in this session (nil: nothing was paid).
	Evidence *payments.ExchangeMessage `json:"evidence"`
}

// SignedReport is a Report with the consumer's signature.
type SignedReport struct {
	// Report is the signed content.
	Report Report `json:"report"`
	// Signature is the consumer's 65-byte signature over Report.Digest().
	Signature hexutil.Bytes `json:"signature"`
}

// reportDomain separates report digests from every other signed object.
const reportDomain = "openmyst.quality-report\x00"

// ErrInvalidReport is wrapped by every error of DecodeReport and Verify.
var ErrInvalidReport = errors.New("quality: invalid report")

func badReport(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidReport, fmt.Sprintf(format, args...))
}

// Validate checks the report's fields and its evidence's consistency
// (not signatures).
func (r *Report) Validate() error {
	switch {
	case r.Version != ReportVersion:
		return badReport("version %d, want %d", r.Version, ReportVersion)
	case r.ChainID == 0:
		return badReport("missing chain_id")
	case r.Consumer == (common.Address{}) || r.Provider == (common.Address{}) || r.Hermes == (common.Address{}):
		return badReport("missing consumer, provider or hermes")
	case r.Consumer == r.Provider:
		return badReport("consumer reports on itself")
	case r.ProposalSeq == 0:
		return badReport("missing proposal_seq")
	case !r.Outcome.valid():
		return badReport("unknown outcome %q", r.Outcome)
	case !r.Paid.IsSet():
		return badReport("missing paid")
	case r.IssuedAt <= 0:
		return badReport("missing issued_at")
	case r.Outcome.Success() && r.ConnectMs == 0:
		return badReport("a connected session without connect_ms")
	}
	if r.Evidence == nil {
		if r.Paid.Int().Sign() != 0 {
			return badReport("paid %s without evidence", r.Paid)
		}
		return nil
	}
	em := r.Evidence
	if err := em.Validate(); err != nil {
		return badReport("evidence: %v", err)
	}
	switch {
	case em.Provider != r.Provider:
		return badReport("evidence pays %s, report is on %s", em.Provider.Hex(), r.Provider.Hex())
	case em.HermesID != r.Hermes:
		return badReport("evidence through hermes %s, report names %s", em.HermesID.Hex(), r.Hermes.Hex())
	case !em.ChainID.IsUint64() || em.ChainID.Uint64() != r.ChainID:
		return badReport("evidence on chain %s, report on %d", em.ChainID, r.ChainID)
	case em.AgreementTotal.Cmp(r.Paid.Int()) != 0:
		return badReport("paid %s, evidence pays %s", r.Paid, em.AgreementTotal)
	case em.Promise.Amount.Cmp(em.AgreementTotal) < 0:
		return badReport("evidence promise %s below its agreement total %s", em.Promise.Amount, em.AgreementTotal)
	}
	return nil
}

// Digest is keccak256("openmyst.quality-report\x00" || JSON(report)).
func (r *Report) Digest() ([32]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return [32]byte{}, fmt.Errorf("quality: encode report: %w", err)
	}
	return crypto.Keccak256Hash([]byte(reportDomain), b), nil
}

// SignReport validates r and signs it with signer, which must be
// r.Consumer.
func SignReport(r Report, signer identity.Signer) (SignedReport, error) {
	sig, err := identity.SignRecord(&r, r.Consumer, signer)
	if err != nil {
		return SignedReport{}, fmt.Errorf("quality: sign report: %w", err)
	}
	return SignedReport{Report: r, Signature: sig}, nil
}

// Verify checks the fields, the consumer's signature and, when evidence is
// attached, that the consumer signed it. It does not look at the clock or
// the chain (the Scorer's Backing does).
func (s *SignedReport) Verify() error {
	err := identity.VerifyRecord(&s.Report, s.Report.Consumer, s.Signature)
	if errors.Is(err, identity.ErrBadSignature) {
		return badReport("signature: %v", err)
	} else if err != nil {
		return err
	}
	if em := s.Report.Evidence; em != nil {
		c, err := em.RecoverConsumer()
		if err != nil {
			return badReport("evidence: %v", err)
		}
		if c != s.Report.Consumer {
			return badReport("evidence signed by %s, not the consumer", c.Hex())
		}
	}
	return nil
}

// Encode returns the wire form.
func (s *SignedReport) Encode() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("quality: encode report: %w", err)
	}
	return b, nil
}

// DecodeReport strictly decodes and verifies a SignedReport: size limit,
// no unknown fields or trailing data, every field valid, signatures by the
// consumer. Clock and chain checks are the caller's.
func DecodeReport(b []byte) (SignedReport, error) {
	if len(b) > MaxReportSize {
		return SignedReport{}, badReport("%d bytes, max %d", len(b), MaxReportSize)
	}
	var s SignedReport
	if err := strictjson.Unmarshal(b, &s); err != nil {
		return SignedReport{}, badReport("decode: %v", err)
	}
	if err := s.Verify(); err != nil {
		return SignedReport{}, err
	}
	return s, nil
}

// ID names a report (its digest); replays of one report share it.
func (s *SignedReport) ID() [32]byte {
	d, _ := s.Report.Digest()
	return d
}

// Age is how old the report is at now.
func (s *SignedReport) Age(now time.Time) time.Duration {
	return now.Sub(time.Unix(s.Report.IssuedAt, 0))
}
