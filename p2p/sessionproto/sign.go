package sessionproto

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

const signatureLength = identity.SignatureLength

// requestDomain separates SessionRequest digests from every other signed
// openmyst object.
const requestDomain = "openmyst/session-request/v1"

// Digest returns the 32-byte digest the consumer signs:
//
//	keccak256("openmyst/session-request/v1" || chainId(uint256) ||
//	          consumer(20) || provider(20) || hermes(20) ||
//	          uint8(len(serviceType)) || serviceType || proposalSeq(uint64) ||
//	          pricePerHour(uint256) || pricePerGiB(uint256) ||
//	          wgPublicKey(32) || nonce(16) || issuedAt(int64)
//	          [ || 0x01 || keccak256(ice) ])
//
// Integers are big-endian, fixed width as written. The ICE part is present
// only when the request carries an offer (so a request without one has the
// digest of protocol 1.0); ice is the offer exactly as Encode puts it on
// the wire (compact JSON). Signature is excluded.
func (m *SessionRequest) Digest() [32]byte {
	buf := make([]byte, 0, 256)
	buf = append(buf, requestDomain...)
	buf = append(buf, math.U256Bytes(new(big.Int).SetUint64(m.ChainID))...)
	buf = append(buf, m.Consumer.Bytes()...)
	buf = append(buf, m.Provider.Bytes()...)
	buf = append(buf, m.Hermes.Bytes()...)
	st := m.ServiceType
	if len(st) > 255 {
		st = st[:255] // Validate rejects these; keep the layout well-defined.
	}
	buf = append(buf, byte(len(st)))
	buf = append(buf, st...)
	buf = binary.BigEndian.AppendUint64(buf, m.ProposalSeq)
	buf = append(buf, math.U256Bytes(m.PricePerHour.Int())...)
	buf = append(buf, math.U256Bytes(m.PricePerGiB.Int())...)
	buf = append(buf, m.WGPublicKey[:]...)
	buf = append(buf, m.Nonce[:]...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.IssuedAt))
	if len(m.ICE) > 0 {
		buf = append(buf, 0x01)
		buf = append(buf, crypto.Keccak256(wireJSON(m.ICE))...)
	}
	var d [32]byte
	copy(d[:], crypto.Keccak256(buf))
	return d
}

// wireJSON returns raw as json.Marshal writes it inside a message
// (compacted), or raw itself when it is not valid JSON (Validate refuses
// such a request; the digest stays well-defined).
func wireJSON(raw json.RawMessage) []byte {
	b, err := json.Marshal(raw)
	if err != nil {
		return raw
	}
	return b
}

// Sign fills Consumer with the signer's identity, a fresh random Nonce when
// the nonce is zero, and Signature over Digest.
func (m *SessionRequest) Sign(s identity.Signer) error {
	m.Consumer = s.Address()
	if m.Nonce == (Nonce{}) {
		if _, err := rand.Read(m.Nonce[:]); err != nil {
			return fmt.Errorf("sessionproto: session request nonce: %w", err)
		}
	}
	d := m.Digest()
	sig, err := s.Sign(d[:])
	if err != nil {
		return fmt.Errorf("sessionproto: sign session request: %w", err)
	}
	m.Signature = sig
	return nil
}

// VerifySignature checks that Signature is the Consumer's signature over
// Digest, under identity.Recover's rules (those of the contracts: 65 bytes,
// v in {27, 28}, low s). The error wraps identity.ErrBadSignature.
func (m *SessionRequest) VerifySignature() error {
	d := m.Digest()
	if err := identity.Verify(m.Consumer, d[:], m.Signature); err != nil {
		return fmt.Errorf("session request: %w", err)
	}
	return nil
}

// ErrStale is returned by CheckFresh for a request issued too long ago or
// too far in the future.
var ErrStale = errors.New("session request is stale")

// ErrReplay is returned by ReplayGuard for a request nonce seen before.
var ErrReplay = errors.New("session request replayed")

// CheckFresh returns an error wrapping ErrStale unless IssuedAt is within
// maxSkew of now.
func (m *SessionRequest) CheckFresh(now time.Time, maxSkew time.Duration) error {
	return checkFresh(m.IssuedAt, now, maxSkew)
}

func checkFresh(issuedAt int64, now time.Time, maxSkew time.Duration) error {
	issued := time.Unix(issuedAt, 0)
	if d := now.Sub(issued); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: issued at %s, now %s, allowed skew %s", ErrStale,
			issued.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), maxSkew)
	}
	return nil
}

// ReplayGuard remembers the nonces of recently accepted session requests so
// a captured request cannot be replayed while it is still fresh. It keeps
// each nonce for twice the allowed skew, after which CheckFresh rejects the
// request anyway. It is in memory only: after a provider restart a request
// captured less than MaxSkew earlier could be replayed once, which opens a
// session the replayer can neither use (it lacks the consumer's WireGuard
// private key) nor pay for (it lacks the consumer's identity key), so the
// provider ends it at the first unpaid invoice. Safe for concurrent use.
type ReplayGuard struct {
	// MaxSkew is the freshness window passed to CheckFresh.
	MaxSkew time.Duration
	// Limit caps how many nonces are remembered; when it is reached new
	// requests fail with ErrGuardFull (answer CodeCapacity) until old
	// nonces expire, so a flood of freshly made identities cannot grow
	// the guard without bound.
	Limit int

	mu        sync.Mutex
	seen      map[Nonce]time.Time // nonce -> forget after
	nextPrune time.Time
}

// DefaultReplayLimit is the Limit NewReplayGuard sets.
const DefaultReplayLimit = 1 << 16

// ErrGuardFull is returned by ReplayGuard.Check when it remembers Limit
// nonces already.
var ErrGuardFull = errors.New("session request rate too high")

// NewReplayGuard returns a guard that accepts requests issued within
// maxSkew of the current time, remembering at most DefaultReplayLimit.
func NewReplayGuard(maxSkew time.Duration) *ReplayGuard {
	return &ReplayGuard{MaxSkew: maxSkew, Limit: DefaultReplayLimit, seen: make(map[Nonce]time.Time)}
}

// Check accepts m once: it fails with ErrStale for a request outside the
// freshness window and with ErrReplay for a nonce it has already accepted.
// It does not verify the signature; call VerifySignature first so forged
// requests cannot burn nonces.
func (g *ReplayGuard) Check(m *SessionRequest, now time.Time) error {
	return g.CheckNonce(m.Nonce, m.IssuedAt, now)
}

// CheckNonce is Check for any signed message with a nonce and an issue
// time (Unix seconds), such as a Resume; a guard should serve one kind of
// message (nonces of different kinds do not collide in practice, but
// their floods should not crowd each other out).
func (g *ReplayGuard) CheckNonce(nonce Nonce, issuedAt int64, now time.Time) error {
	if err := checkFresh(issuedAt, now, g.MaxSkew); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = make(map[Nonce]time.Time)
	}
	if !now.Before(g.nextPrune) {
		for n, until := range g.seen {
			if now.After(until) {
				delete(g.seen, n)
			}
		}
		g.nextPrune = now.Add(g.MaxSkew / 4)
	}
	if _, dup := g.seen[nonce]; dup {
		return fmt.Errorf("%w: nonce %x", ErrReplay, nonce[:])
	}
	if g.Limit > 0 && len(g.seen) >= g.Limit {
		return fmt.Errorf("%w: %d requests in the last %s", ErrGuardFull, len(g.seen), 2*g.MaxSkew)
	}
	g.seen[nonce] = now.Add(2 * g.MaxSkew)
	return nil
}
