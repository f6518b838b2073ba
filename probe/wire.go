package probe

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/internal/strictjson"
)

// Protocol IDs.
const (
	// ProtocolCheck asks a peer to check the requester's reachability.
	ProtocolCheck = "/openmyst/probe/1.0.0"
	// ProtocolEcho is the checker's small transfer to the requester.
	ProtocolEcho = "/openmyst/probe/echo/1.0.0"
)

// Wire limits.
const (
	// Version is the message version.
	Version = 1
	// NonceSize is the size of a check's nonce in bytes.
	NonceSize = 32
	// EchoSize is the payload the echo carries each way.
	EchoSize = 1024
	// MaxRequestSize bounds an encoded Request.
	MaxRequestSize = 256
	// MaxResponseSize bounds an encoded Response.
	MaxResponseSize = 2048
	// MaxTextLen bounds a Result's Addr and Error and a refusal.
	MaxTextLen = 256
	// MaxRTT is the largest round-trip time a Result may report.
	MaxRTT = time.Minute
)

// Paths a reachable Result names.
const (
	// PathDirect is a direct connection to an advertised address.
	PathDirect = "direct"
	// PathRelay is a connection through a circuit relay.
	PathRelay = "relay"
)

// resultDomain separates result signatures from every other signature
// made with a peer key.
const resultDomain = "openmyst-probe-result/1\x00"

// Request is the requester's message on ProtocolCheck.
type Request struct {
	// V is Version.
	V int `json:"v"`
	// Nonce is 32 random bytes, hex.
	Nonce string `json:"nonce"`
}

// Validate checks the version and the nonce's form.
func (r Request) Validate() error {
	if r.V != Version {
		return fmt.Errorf("probe: request version %d, want %d", r.V, Version)
	}
	if _, err := decodeNonce(r.Nonce); err != nil {
		return err
	}
	return nil
}

// Encode returns the request's wire form.
func (r Request) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// DecodeRequest decodes and validates a request strictly: at most
// MaxRequestSize bytes, exactly the known fields, nothing after them.
func DecodeRequest(b []byte) (Request, error) {
	return strictjson.Decode(b, MaxRequestSize, "probe: request", (*Request).Validate)
}

func decodeNonce(s string) ([NonceSize]byte, error) {
	var n [NonceSize]byte
	if len(s) != 2*NonceSize {
		return n, fmt.Errorf("probe: nonce is %d hex characters, want %d", len(s), 2*NonceSize)
	}
	if _, err := hex.Decode(n[:], []byte(s)); err != nil {
		return n, fmt.Errorf("probe: nonce: %w", err)
	}
	return n, nil
}

// Result is what a checker saw when it dialled the requester.
type Result struct {
	// V is Version.
	V int `json:"v"`
	// Requester and Checker are peer ids.
	Requester string `json:"requester"`
	Checker   string `json:"checker"`
	// Nonce is the request's nonce.
	Nonce string `json:"nonce"`
	// Reachable is whether the fresh connection and the echo succeeded.
	Reachable bool `json:"reachable"`
	// Path is PathDirect or PathRelay when Reachable.
	Path string `json:"path,omitempty"`
	// Addr is the requester's address the connection went to.
	Addr string `json:"addr,omitempty"`
	// RTTMillis is the echo's round-trip time.
	RTTMillis int64 `json:"rtt_ms"`
	// Error says why the check failed (not Reachable).
	Error string `json:"error,omitempty"`
	// At is when the check ended, unix seconds.
	At int64 `json:"at"`
}

// Validate checks every field's form and the fields' agreement.
func (r Result) Validate() error {
	if r.V != Version {
		return fmt.Errorf("probe: result version %d, want %d", r.V, Version)
	}
	if _, err := peer.Decode(r.Requester); err != nil {
		return fmt.Errorf("probe: result requester: %w", err)
	}
	if _, err := peer.Decode(r.Checker); err != nil {
		return fmt.Errorf("probe: result checker: %w", err)
	}
	if _, err := decodeNonce(r.Nonce); err != nil {
		return err
	}
	if len(r.Addr) > MaxTextLen || len(r.Error) > MaxTextLen {
		return fmt.Errorf("probe: result addr or error longer than %d bytes", MaxTextLen)
	}
	if r.RTTMillis < 0 || r.RTTMillis > MaxRTT.Milliseconds() {
		return fmt.Errorf("probe: result rtt %d ms out of range", r.RTTMillis)
	}
	if r.At <= 0 {
		return errors.New("probe: result without a time")
	}
	if r.Reachable {
		if r.Path != PathDirect && r.Path != PathRelay {
			return fmt.Errorf("probe: reachable result with path %q", r.Path)
		}
		if r.Error != "" {
			return errors.New("probe: reachable result with an error")
		}
	} else if r.Path != "" || r.Error == "" {
		return errors.New("probe: unreachable result needs an error and no path")
	}
	return nil
}

// signedBytes is what a result's signature covers.
func (r Result) signedBytes() ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append([]byte(resultDomain), body...), nil
}

// Sign signs r with the checker's peer key.
func (r Result) Sign(key ic.PrivKey) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	msg, err := r.signedBytes()
	if err != nil {
		return nil, err
	}
	return key.Sign(msg)
}

// Verify checks sig over r under pub, and that pub is r.Checker's key.
func (r Result) Verify(pub ic.PubKey, sig []byte) error {
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return fmt.Errorf("probe: checker key: %w", err)
	}
	if id.String() != r.Checker {
		return fmt.Errorf("probe: result names checker %s but came from %s", r.Checker, id)
	}
	msg, err := r.signedBytes()
	if err != nil {
		return err
	}
	ok, err := pub.Verify(msg, sig)
	if err != nil || !ok {
		return errors.New("probe: bad result signature")
	}
	return nil
}

// Response is the checker's answer on ProtocolCheck: a signed Result, or
// a refusal (rate limit, busy) saying why no check was made.
type Response struct {
	// Result and Sig (the checker's signature over Result) come together.
	Result *Result `json:"result,omitempty"`
	Sig    []byte  `json:"sig,omitempty"`
	// Refused, alone, says why the checker made no check.
	Refused string `json:"refused,omitempty"`
}

// Validate checks that exactly one of a signed result and a refusal is
// present and well formed.
func (r Response) Validate() error {
	switch {
	case r.Refused != "" && (r.Result != nil || r.Sig != nil):
		return errors.New("probe: response both refuses and answers")
	case r.Refused != "":
		if len(r.Refused) > MaxTextLen {
			return fmt.Errorf("probe: refusal longer than %d bytes", MaxTextLen)
		}
		return nil
	case r.Result == nil || len(r.Sig) == 0:
		return errors.New("probe: response needs a result and its signature, or a refusal")
	case len(r.Sig) > 512:
		return errors.New("probe: signature too long")
	}
	return r.Result.Validate()
}

// Encode returns the response's wire form.
func (r Response) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponseSize {
		return nil, fmt.Errorf("probe: response is %d bytes, max %d", len(b), MaxResponseSize)
	}
	return b, nil
}

// DecodeResponse decodes and validates a response strictly (it does not
// verify the signature: see Result.Verify).
func DecodeResponse(b []byte) (Response, error) {
	r, err := strictjson.Decode(b, MaxResponseSize, "probe: response", (*Response).Validate)
	if err != nil {
		return Response{}, err
	}
	if r.Result != nil {
		// The signature covers the canonical encoding: refuse any other
		// spelling of the same result, so one result has one wire form.
		canon, err := json.Marshal(r.Result)
		if err != nil {
			return Response{}, err
		}
		raw, err := strictjson.Object(b, "result", "sig")
		if err != nil {
			return Response{}, fmt.Errorf("probe: response: %w", err)
		}
		if !bytes.Equal(canon, raw["result"]) {
			return Response{}, errors.New("probe: result is not in canonical form")
		}
	}
	return r, nil
}
