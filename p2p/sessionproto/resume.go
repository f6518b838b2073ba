package sessionproto

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
)

// ProtocolResume is version 1.2 of the session protocol: everything of
// ProtocolICE, and the first message of a stream may also be a Resume,
// which moves a running session (opened on a 1.2 stream) onto the new
// stream after its old one was lost (a circuit relay connection that hit
// its limit, any dropped connection) while the WireGuard tunnel kept
// working. A peer that does not serve 1.2 never sees a Resume: its
// sessions end with their stream, as before.
const ProtocolResume = "/openmyst/session/1.2.0"

// The message types of protocol version 1.2.
const (
	TypeResume    Type = "resume"
	TypeResumeAck Type = "resume_ack"
)

// Resume is the consumer's signed request to continue a running session
// on a new stream. The provider accepts it only for a session it runs for
// this consumer, opened on a ProtocolResume stream, with a fresh
// timestamp and an unseen nonce.
type Resume struct {
	// ChainID is the session's chain; the signature binds it.
	ChainID uint64 `json:"chain_id"`
	// SessionID is the session to resume (SessionResponse.SessionID).
	SessionID SessionID `json:"session_id"`
	// Consumer is the identity that opened (and pays for) the session and
	// signs the resume.
	Consumer common.Address `json:"consumer"`
	// Provider is the provider's identity.
	Provider common.Address `json:"provider"`
	// PaidTotal is the agreement total the consumer has paid so far (its
	// last exchange message's total; zero before the first payment).
	PaidTotal money.Amount `json:"paid_total"`
	// Exchange is the consumer's last exchange message (the payments wire
	// form, at most MaxPaymentJSON bytes), present exactly when PaidTotal
	// is positive: a payment lost with the old stream reaches the provider
	// with the resume. The session layer decodes and verifies it.
	Exchange json.RawMessage `json:"exchange_message,omitempty"`
	// Nonce is 16 random bytes; with IssuedAt it makes the resume unique.
	Nonce Nonce `json:"nonce"`
	// IssuedAt is when the consumer made the resume, in Unix seconds.
	IssuedAt int64 `json:"issued_at"`
	// Signature is the consumer's 65-byte signature over Digest.
	Signature hexutil.Bytes `json:"signature"`
}

// Type implements Message.
func (*Resume) Type() Type { return TypeResume }

// Validate implements Message. It checks formats and ranges, not the
// signature (see VerifySignature).
func (m *Resume) Validate() error {
	switch {
	case m.ChainID == 0:
		return fmt.Errorf("chain_id: must be positive")
	case m.SessionID == (SessionID{}):
		return fmt.Errorf("session_id: all zeros")
	case m.Consumer == (common.Address{}):
		return fmt.Errorf("consumer: zero address")
	case m.Provider == (common.Address{}):
		return fmt.Errorf("provider: zero address")
	case m.Consumer == m.Provider:
		return fmt.Errorf("consumer: same identity as provider")
	case !m.PaidTotal.IsSet():
		return fmt.Errorf("paid_total: missing")
	case m.Nonce == (Nonce{}):
		return fmt.Errorf("nonce: all zeros")
	case m.IssuedAt <= 0:
		return fmt.Errorf("issued_at: must be positive")
	case len(m.Signature) != signatureLength:
		return fmt.Errorf("signature: %d bytes, want %d", len(m.Signature), signatureLength)
	}
	paid := m.PaidTotal.Int().Sign() > 0
	if paid != (m.Exchange != nil) {
		return fmt.Errorf("exchange_message: must be present exactly when paid_total is positive (paid_total %s)", m.PaidTotal)
	}
	if m.Exchange != nil {
		return checkEmbeddedObject("exchange_message", m.Exchange)
	}
	return nil
}

// ResumeAck is the provider's answer to an accepted Resume: the session
// continues on this stream.
type ResumeAck struct {
	// SessionID is the resumed session.
	SessionID SessionID `json:"session_id"`
	// AcceptedTotal is the agreement total the provider had accepted
	// payment for when the resume arrived (before the resume's exchange
	// message), for the consumer's logs.
	AcceptedTotal money.Amount `json:"accepted_total"`
}

// Type implements Message.
func (*ResumeAck) Type() Type { return TypeResumeAck }

// Validate implements Message.
func (m *ResumeAck) Validate() error {
	if m.SessionID == (SessionID{}) {
		return fmt.Errorf("session_id: all zeros")
	}
	if !m.AcceptedTotal.IsSet() {
		return fmt.Errorf("accepted_total: missing")
	}
	return nil
}

// resumeDomain separates Resume digests from every other signed openmyst
// object.
const resumeDomain = "openmyst/session-resume/v1"

// Digest returns the 32-byte digest the consumer signs:
//
//	keccak256("openmyst/session-resume/v1" || chainId(uint256) ||
//	          sessionId(16) || consumer(20) || provider(20) ||
//	          paidTotal(uint256) || nonce(16) || issuedAt(int64)
//	          [ || 0x01 || keccak256(exchange_message) ])
//
// Integers are big-endian, fixed width as written; the exchange part is
// there only when the resume carries one (as Encode writes it: compact
// JSON). Signature is excluded.
func (m *Resume) Digest() [32]byte {
	buf := make([]byte, 0, 192)
	buf = append(buf, resumeDomain...)
	buf = append(buf, math.U256Bytes(new(big.Int).SetUint64(m.ChainID))...)
	buf = append(buf, m.SessionID[:]...)
	buf = append(buf, m.Consumer.Bytes()...)
	buf = append(buf, m.Provider.Bytes()...)
	buf = append(buf, math.U256Bytes(m.PaidTotal.Int())...)
	buf = append(buf, m.Nonce[:]...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.IssuedAt))
	if len(m.Exchange) > 0 {
		buf = append(buf, 0x01)
		buf = append(buf, crypto.Keccak256(wireJSON(m.Exchange))...)
	}
	var d [32]byte
	copy(d[:], crypto.Keccak256(buf))
	return d
}

// Sign fills Consumer with the signer's identity, a fresh random Nonce when
// the nonce is zero, IssuedAt with now when it is zero, and Signature over
// Digest.
func (m *Resume) Sign(s identity.Signer, now time.Time) error {
	m.Consumer = s.Address()
	if m.Nonce == (Nonce{}) {
		if _, err := rand.Read(m.Nonce[:]); err != nil {
			return fmt.Errorf("sessionproto: resume nonce: %w", err)
		}
	}
	if m.IssuedAt == 0 {
		m.IssuedAt = now.Unix()
	}
	d := m.Digest()
	sig, err := s.Sign(d[:])
	if err != nil {
		return fmt.Errorf("sessionproto: sign resume: %w", err)
	}
	m.Signature = sig
	return nil
}

// VerifySignature checks that Signature is the Consumer's signature over
// Digest (identity.Recover's rules). The error wraps
// identity.ErrBadSignature.
func (m *Resume) VerifySignature() error {
	d := m.Digest()
	if err := identity.Verify(m.Consumer, d[:], m.Signature); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}
