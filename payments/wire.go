package payments

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/money"
)

// ErrDecode is wrapped by every decoding error of this package.
var ErrDecode = errors.New("payments: invalid message")

// MaxMessageSize bounds every JSON wire form accepted by the decoders.
const MaxMessageSize = 8 << 10

func decodeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDecode, fmt.Sprintf(format, args...))
}

// checkUint256 reports whether x is a valid uint256 value.
func checkUint256(name string, x *big.Int) error {
	if err := money.CheckUint256(x); err != nil {
		return decodeErr("%s %v", name, err)
	}
	return nil
}

// put256 appends x as 32 bytes big-endian.
func put256(buf []byte, x *big.Int) []byte {
	var w [32]byte
	x.FillBytes(w[:])
	return append(buf, w[:]...)
}

// strictObject reads one JSON object whose keys must be exactly fields:
// no unknown, missing, duplicate or null members and no trailing data.
func strictObject(data []byte, fields ...string) (map[string]json.RawMessage, error) {
	if len(data) > MaxMessageSize {
		return nil, decodeErr("message is %d bytes, limit %d", len(data), MaxMessageSize)
	}
	out, err := strictjson.Object(data, fields...)
	if err != nil {
		return nil, decodeErr("%v", err)
	}
	return out, nil
}

// wireObject reads the members of one strict wire object of kind ("promise",
// "invoice", ...); the first error sticks, so a decoder reads every field
// and checks Err once.
type wireObject struct {
	kind string
	m    map[string]json.RawMessage
	err  error
}

// readObject starts reading data, which must be an object with exactly fields.
func readObject(kind string, data []byte, fields ...string) *wireObject {
	m, err := strictObject(data, fields...)
	return &wireObject{kind: kind, m: m, err: err}
}

func (o *wireObject) read(parse func() error) {
	if o.err == nil {
		o.err = parse()
	}
}

func (o *wireObject) uint256(name string) (x *big.Int) {
	o.read(func() (err error) { x, err = parseUint256(name, o.m[name]); return })
	return x
}

func (o *wireObject) bytes32(name string) (b [32]byte) {
	o.read(func() (err error) { b, err = parse32(name, o.m[name]); return })
	return b
}

func (o *wireObject) address(name string) (a common.Address) {
	o.read(func() (err error) { a, err = parseAddress(name, o.m[name]); return })
	return a
}

func (o *wireObject) signature(name string) (sig []byte) {
	o.read(func() (err error) { sig, err = parseSignature(name, o.m[name]); return })
	return sig
}

// Err returns the first error, prefixed with the object's kind.
func (o *wireObject) Err() error {
	if o.err != nil {
		return fmt.Errorf("%s: %w", o.kind, o.err)
	}
	return nil
}

// unmarshalWith implements UnmarshalJSON with a strict decoder.
func unmarshalWith[T any](dst *T, decode func([]byte) (*T, error), data []byte) error {
	v, err := decode(data)
	if err != nil {
		return err
	}
	*dst = *v
	return nil
}

// plainString reports whether raw is a JSON string of printable ASCII
// without escapes (every decimal and hex field of a well-formed message):
// its value is the bytes between the quotes.
func plainString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func rawString(name string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", decodeErr("field %q must be a string", name)
	}
	if plainString(raw) {
		// What json.Unmarshal returns for it, without reflection.
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", decodeErr("field %q: %v", name, err)
	}
	return s, nil
}

// parseUint256 parses a canonical decimal string (no sign, no leading
// zeros, no exponent) in [0, 2^256).
func parseUint256(name string, raw json.RawMessage) (*big.Int, error) {
	s, err := rawString(name, raw)
	if err != nil {
		return nil, err
	}
	x, err := money.ParseUint256(s)
	if err != nil {
		return nil, decodeErr("field %q %v", name, err)
	}
	return x, nil
}

// parseHex parses a 0x-prefixed hex string of exactly n bytes.
func parseHex(name string, raw json.RawMessage, n int) ([]byte, error) {
	s, err := rawString(name, raw)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(s, "0x") {
		return nil, decodeErr("field %q must start with 0x", name)
	}
	if len(s) != 2+2*n {
		return nil, decodeErr("field %q must be %d bytes, got %d hex digits", name, n, len(s)-2)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, decodeErr("field %q is not hex", name)
	}
	return b, nil
}

func parse32(name string, raw json.RawMessage) ([32]byte, error) {
	var out [32]byte
	b, err := parseHex(name, raw, 32)
	if err != nil {
		return out, err
	}
	copy(out[:], b)
	return out, nil
}

func parseAddress(name string, raw json.RawMessage) (common.Address, error) {
	b, err := parseHex(name, raw, common.AddressLength)
	if err != nil {
		return common.Address{}, err
	}
	return common.BytesToAddress(b), nil
}

func parseSignature(name string, raw json.RawMessage) ([]byte, error) {
	b, err := parseHex(name, raw, SignatureLength)
	if err != nil {
		return nil, err
	}
	// The contracts' rules (identity.CheckSignature): a signature the chain
	// would refuse is refused at decode, before any recovery.
	if err := identity.CheckSignature(b); err != nil {
		return nil, fmt.Errorf("%w: field %q: %w", ErrDecode, name, err)
	}
	return b, nil
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

// appendHex0x appends "0x" and the lower-case hex of src (hex0x's bytes).
func appendHex0x(b, src []byte) []byte {
	b = append(b, "0x"...)
	return hex.AppendEncode(b, src)
}

// appendDec appends x in decimal (decString's bytes).
func appendDec(b []byte, x *big.Int) []byte {
	if x == nil {
		return append(b, '0')
	}
	return x.Append(b, 10)
}

func decString(x *big.Int) string {
	if x == nil {
		return "0"
	}
	return x.String()
}
