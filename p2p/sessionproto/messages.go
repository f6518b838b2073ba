package sessionproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/openmyst/openmyst/money"
)

// ProtocolID is the libp2p protocol id of the session control stream. A
// change that old peers cannot decode gets a new major version.
const ProtocolID = "/openmyst/session/1.0.0"

// ProtocolICE is version 1.1 of the session protocol: SessionRequest and
// SessionResponse may carry an ICE offer (the "ice" fields). A provider
// serves both versions on one handler; a consumer asks for ProtocolICE
// first and sends an offer only when the provider agreed to it, so a 1.0
// provider, whose strict decoder refuses the unknown field, keeps working
// with the static WireGuard endpoint.
const ProtocolICE = "/openmyst/session/1.1.0"

// Protocols are the versions a consumer offers, best first.
var Protocols = []string{ProtocolResume, ProtocolICE, ProtocolID}

// ServiceWireGuard is the only service type this protocol version opens.
const ServiceWireGuard = "wireguard"

// Size limits enforced by the decoder.
const (
	// MaxFrameSize is the largest frame payload (the JSON envelope).
	MaxFrameSize = 64 << 10
	// MaxPaymentJSON is the largest embedded invoice or exchange message.
	MaxPaymentJSON = 16 << 10
	// MaxReasonLen is the longest Destroy reason, in bytes.
	MaxReasonLen = 256
	// MaxErrorMessageLen is the longest Error message, in bytes.
	MaxErrorMessageLen = 512
	// MaxConsumerAddrs is the most tunnel addresses a response may assign.
	MaxConsumerAddrs = 4
	// MaxDNSServers is the most DNS servers a response may list.
	MaxDNSServers = 4
	// MaxServiceTypeLen is the longest service type name.
	MaxServiceTypeLen = 32
	// MaxICEJSON is the largest embedded ICE offer (nat/ice.MaxOfferSize).
	MaxICEJSON = 8 << 10
)

// Type names a message on the wire (the envelope's "type").
type Type string

// The message types of protocol version 1.
const (
	TypeSessionRequest  Type = "session_request"
	TypeSessionResponse Type = "session_response"
	TypeInvoice         Type = "invoice"
	TypeExchangeMessage Type = "exchange_message"
	TypeKeepalive       Type = "keepalive"
	TypeDestroy         Type = "destroy"
	TypeError           Type = "error"
)

// Message is one session protocol message.
type Message interface {
	// Type is the envelope type the message travels under.
	Type() Type
	// Validate checks every field's range and format; Encode refuses and
	// Decode rejects a message that fails it.
	Validate() error
}

// SessionRequest is the consumer's signed request to open a session on a
// provider's proposal at an agreed price.
type SessionRequest struct {
	// ChainID is the chain the consumer pays on; the signature binds it.
	ChainID uint64 `json:"chain_id"`
	// Consumer is the consumer identity that signs the request and pays.
	Consumer common.Address `json:"consumer"`
	// Provider is the identity of the proposal's provider.
	Provider common.Address `json:"provider"`
	// ServiceType is the proposal's service type (ServiceWireGuard).
	ServiceType string `json:"service_type"`
	// ProposalSeq is the sequence number of the proposal the consumer saw;
	// the provider refuses one that is no longer current.
	ProposalSeq uint64 `json:"proposal_seq"`
	// Hermes is the payment hub the consumer pays through.
	Hermes common.Address `json:"hermes"`
	// PricePerHour is the agreed price per hour of session time, in wei.
	PricePerHour money.Amount `json:"price_per_hour"`
	// PricePerGiB is the agreed price per GiB (2^30 bytes) of traffic, up
	// plus down, in wei.
	PricePerGiB money.Amount `json:"price_per_gib"`
	// WGPublicKey is the consumer's WireGuard public key for this session.
	WGPublicKey Key `json:"wg_public_key"`
	// Nonce is 16 random bytes; with IssuedAt it makes the request
	// unique so it cannot be replayed.
	Nonce Nonce `json:"nonce"`
	// IssuedAt is when the consumer made the request, in Unix seconds.
	IssuedAt int64 `json:"issued_at"`
	// ICE is the consumer's ICE offer (nat/ice.Offer as a JSON object of
	// at most MaxICEJSON bytes), or empty: then the consumer uses the
	// provider's static WireGuard endpoint. Only on ProtocolICE streams.
	// The signature covers it. This package checks its size and that it
	// is a JSON object; the session layer decodes and validates it with
	// nat/ice.DecodeOffer before sending a packet to any candidate.
	ICE json.RawMessage `json:"ice,omitempty"`
	// Signature is the consumer's 65-byte signature over Digest.
	Signature hexutil.Bytes `json:"signature"`
}

// Type implements Message.
func (*SessionRequest) Type() Type { return TypeSessionRequest }

// Validate implements Message. It checks formats and ranges, not the
// signature (see VerifySignature).
func (m *SessionRequest) Validate() error {
	if m.ChainID == 0 {
		return fmt.Errorf("chain_id: must be positive")
	}
	if m.Consumer == (common.Address{}) {
		return fmt.Errorf("consumer: zero address")
	}
	if m.Provider == (common.Address{}) {
		return fmt.Errorf("provider: zero address")
	}
	if m.Hermes == (common.Address{}) {
		return fmt.Errorf("hermes: zero address")
	}
	if m.Consumer == m.Provider {
		return fmt.Errorf("consumer: same identity as provider")
	}
	if err := checkToken("service_type", m.ServiceType, MaxServiceTypeLen); err != nil {
		return err
	}
	if m.ProposalSeq == 0 {
		return fmt.Errorf("proposal_seq: must be positive")
	}
	if m.WGPublicKey.IsZero() {
		return fmt.Errorf("wg_public_key: all zeros")
	}
	if m.Nonce == (Nonce{}) {
		return fmt.Errorf("nonce: all zeros")
	}
	if m.IssuedAt <= 0 {
		return fmt.Errorf("issued_at: must be positive")
	}
	if len(m.Signature) != signatureLength {
		return fmt.Errorf("signature: %d bytes, want %d", len(m.Signature), signatureLength)
	}
	return checkICE(m.ICE)
}

// SessionResponse is the provider's answer to an accepted SessionRequest:
// where and how to bring up the tunnel.
type SessionResponse struct {
	// SessionID names the session in logs, history and invoices.
	SessionID SessionID `json:"session_id"`
	// ProviderWGKey is the provider's WireGuard public key.
	ProviderWGKey Key `json:"provider_wg_key"`
	// Endpoint is the provider's WireGuard UDP endpoint, host:port.
	Endpoint string `json:"endpoint"`
	// ConsumerAddrs are the tunnel addresses assigned to the consumer.
	ConsumerAddrs []netip.Prefix `json:"consumer_addrs"`
	// ProviderAddr is the provider's address inside the tunnel.
	ProviderAddr netip.Addr `json:"provider_addr"`
	// DNS are the DNS servers the consumer should use inside the tunnel
	// (may be empty).
	DNS []netip.Addr `json:"dns"`
	// ICE is the provider's ICE offer when the request carried one and the
	// provider runs ICE (see SessionRequest.ICE), else empty: the consumer
	// then uses Endpoint.
	ICE json.RawMessage `json:"ice,omitempty"`
	// ExitIP is the public address the provider says the consumer's
	// traffic leaves its exit from (zero: not told, an older provider).
	// It is the provider's claim; the consumer compares it with the
	// address its tunnel reached (see consumer.Status.PublicIPCheck).
	ExitIP netip.Addr `json:"exit_ip,omitzero"`
}

// Type implements Message.
func (*SessionResponse) Type() Type { return TypeSessionResponse }

// Validate implements Message.
func (m *SessionResponse) Validate() error {
	if m.SessionID == (SessionID{}) {
		return fmt.Errorf("session_id: all zeros")
	}
	if m.ProviderWGKey.IsZero() {
		return fmt.Errorf("provider_wg_key: all zeros")
	}
	if err := checkEndpoint(m.Endpoint); err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	if len(m.ConsumerAddrs) == 0 || len(m.ConsumerAddrs) > MaxConsumerAddrs {
		return fmt.Errorf("consumer_addrs: %d entries, want 1..%d", len(m.ConsumerAddrs), MaxConsumerAddrs)
	}
	for i, p := range m.ConsumerAddrs {
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().IsUnspecified() {
			return fmt.Errorf("consumer_addrs[%d]: %q is not a usable address prefix", i, p)
		}
	}
	if !m.ProviderAddr.IsValid() || m.ProviderAddr.Zone() != "" || m.ProviderAddr.IsUnspecified() {
		return fmt.Errorf("provider_addr: %q is not a usable address", m.ProviderAddr)
	}
	if m.DNS == nil {
		return fmt.Errorf("dns: must be a list (may be empty)")
	}
	if len(m.DNS) > MaxDNSServers {
		return fmt.Errorf("dns: %d entries, at most %d", len(m.DNS), MaxDNSServers)
	}
	for i, a := range m.DNS {
		if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() {
			return fmt.Errorf("dns[%d]: %q is not a usable address", i, a)
		}
	}
	if m.ExitIP.IsValid() && (m.ExitIP.Zone() != "" || m.ExitIP.IsUnspecified() || m.ExitIP.IsMulticast()) {
		return fmt.Errorf("exit_ip: %q is not a usable address", m.ExitIP)
	}
	return checkICE(m.ICE)
}

// Invoice carries a provider invoice in the payments package's JSON wire
// form. This package checks only that it is one JSON object of at most
// MaxPaymentJSON bytes; the session layer decodes and verifies it with the
// payments decoder before acting on it.
type Invoice struct {
	// Invoice is the payments invoice JSON object.
	Invoice json.RawMessage `json:"invoice"`
}

// Type implements Message.
func (*Invoice) Type() Type { return TypeInvoice }

// Validate implements Message.
func (m *Invoice) Validate() error { return checkEmbeddedObject("invoice", m.Invoice) }

// ExchangeMessage carries a consumer exchange message (a promise paying an
// invoice) in the payments package's JSON wire form. This package checks
// only that it is one JSON object of at most MaxPaymentJSON bytes; the
// session layer decodes and verifies it with the payments decoder.
type ExchangeMessage struct {
	// ExchangeMessage is the payments exchange message JSON object.
	ExchangeMessage json.RawMessage `json:"exchange_message"`
}

// Type implements Message.
func (*ExchangeMessage) Type() Type { return TypeExchangeMessage }

// Validate implements Message.
func (m *ExchangeMessage) Validate() error {
	return checkEmbeddedObject("exchange_message", m.ExchangeMessage)
}

// Keepalive shows the peer is alive; either side sends one when it has
// sent nothing else for a while.
type Keepalive struct {
	// Seq counts the sender's keepalives, from 1.
	Seq uint64 `json:"seq"`
}

// Type implements Message.
func (*Keepalive) Type() Type { return TypeKeepalive }

// Validate implements Message.
func (m *Keepalive) Validate() error {
	if m.Seq == 0 {
		return fmt.Errorf("seq: must be positive")
	}
	return nil
}

// Destroy ends the session; the sender closes the stream after it.
type Destroy struct {
	// Reason is a short human-readable reason, for logs and history.
	Reason string `json:"reason"`
}

// Type implements Message.
func (*Destroy) Type() Type { return TypeDestroy }

// Validate implements Message.
func (m *Destroy) Validate() error { return checkText("reason", m.Reason, MaxReasonLen) }

// ErrorCode is a stable, machine-readable error code.
type ErrorCode string

// The error codes of the session protocol. They never change meaning.
const (
	CodeBadRequest        ErrorCode = "bad_request"
	CodeBadSignature      ErrorCode = "bad_signature"
	CodePriceMismatch     ErrorCode = "price_mismatch"
	CodeProposalExpired   ErrorCode = "proposal_expired"
	CodeNotRegistered     ErrorCode = "not_registered"
	CodeInsufficientFunds ErrorCode = "insufficient_funds"
	CodeHermesNotAccepted ErrorCode = "hermes_not_accepted"
	CodeCapacity          ErrorCode = "capacity"
	CodeInternal          ErrorCode = "internal"
	CodePaymentTimeout    ErrorCode = "payment_timeout"
	CodeOvercharge        ErrorCode = "overcharge"
	// CodeQuotaExhausted: the provider's monthly traffic quota is used
	// up; it serves no session until the next month (UTC). Added after
	// version 1.1.0 of the protocol: an older peer fails to decode it
	// (and ends the session all the same).
	CodeQuotaExhausted ErrorCode = "quota_exhausted"
	// CodeReadTimeout: the sender heard nothing from the receiver (not
	// even a keepalive) within its read timeout, and ended the session.
	// Added after version 1.2.0 of the protocol, on the same protocol ids:
	// an older peer fails to decode it (and ends the session all the
	// same).
	CodeReadTimeout ErrorCode = "read_timeout"
)

var knownCodes = map[ErrorCode]bool{
	CodeBadRequest: true, CodeBadSignature: true, CodePriceMismatch: true,
	CodeProposalExpired: true, CodeNotRegistered: true, CodeInsufficientFunds: true,
	CodeHermesNotAccepted: true, CodeCapacity: true, CodeInternal: true,
	CodePaymentTimeout: true, CodeOvercharge: true, CodeQuotaExhausted: true,
	CodeReadTimeout: true,
}

// codeWords says what a code means to the side that receives it, for the
// codes whose name alone does not tell who did what.
var codeWords = map[ErrorCode]string{
	CodeReadTimeout: "the peer heard nothing from this side within its read timeout",
}

// Valid reports whether c is one of the defined codes.
func (c ErrorCode) Valid() bool { return knownCodes[c] }

// Codes returns every defined code, sorted.
func Codes() []ErrorCode { return slices.Sorted(maps.Keys(knownCodes)) }

// Error reports why a request was refused or a session is ending. It is
// also a Go error, so a session layer can return a received one as is.
type Error struct {
	// Code is the stable error code.
	Code ErrorCode `json:"code"`
	// Message is a human-readable detail (may be empty); never a secret.
	Message string `json:"message"`
}

// Type implements Message.
func (*Error) Type() Type { return TypeError }

// Validate implements Message.
func (m *Error) Validate() error {
	if !m.Code.Valid() {
		return fmt.Errorf("code: unknown error code %q", m.Code)
	}
	if m.Message == "" {
		return nil
	}
	return checkText("message", m.Message, MaxErrorMessageLen)
}

// Error implements the error interface: the code, in words where its
// name alone does not tell (codeWords), and the peer's message.
func (m *Error) Error() string {
	s := "session error " + string(m.Code)
	if w := codeWords[m.Code]; w != "" {
		s += " (" + w + ")"
	}
	if m.Message == "" {
		return s
	}
	return s + ": " + m.Message
}

// newMessage returns an empty message of type t, or nil for an unknown type.
func newMessage(t Type) Message {
	switch t {
	case TypeSessionRequest:
		return &SessionRequest{}
	case TypeSessionResponse:
		return &SessionResponse{}
	case TypeInvoice:
		return &Invoice{}
	case TypeExchangeMessage:
		return &ExchangeMessage{}
	case TypeKeepalive:
		return &Keepalive{}
	case TypeDestroy:
		return &Destroy{}
	case TypeError:
		return &Error{}
	case TypeResume:
		return &Resume{}
	case TypeResumeAck:
		return &ResumeAck{}
	}
	return nil
}

func checkToken(field, s string, maxLen int) error {
	if s == "" || len(s) > maxLen {
		return fmt.Errorf("%s: length %d, want 1..%d", field, len(s), maxLen)
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%s: %q has characters outside [a-z0-9._-]", field, s)
		}
	}
	return nil
}

func checkText(field, s string, maxLen int) error {
	if s == "" || len(s) > maxLen {
		return fmt.Errorf("%s: length %d, want 1..%d", field, len(s), maxLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: contains control character %U", field, r)
		}
	}
	return nil
}

func checkEndpoint(ep string) error {
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return err
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("host length %d, want 1..253", len(host))
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || strconv.FormatUint(p, 10) != port {
		return fmt.Errorf("port %q is not in 1..65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.IsUnspecified() || a.Zone() != "" {
			return fmt.Errorf("host %q is not a usable address", host)
		}
		return nil
	}
	for _, c := range []byte(host) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
		}
	}
	return nil
}

// checkICE accepts an absent ICE offer or one JSON object of at most
// MaxICEJSON bytes.
func checkICE(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	if len(raw) > MaxICEJSON {
		return fmt.Errorf("ice: %d bytes, more than %d", len(raw), MaxICEJSON)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return fmt.Errorf("ice: not a JSON object")
	}
	return nil
}

func checkEmbeddedObject(field string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return fmt.Errorf("%s: empty", field)
	}
	if len(raw) > MaxPaymentJSON {
		return fmt.Errorf("%s: %d bytes, more than %d", field, len(raw), MaxPaymentJSON)
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return fmt.Errorf("%s: not a JSON object", field)
	}
	return nil
}
