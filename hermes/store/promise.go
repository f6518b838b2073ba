package store

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/openmyst/openmyst/payments"
)

// The journal stores promises (since migration 6) in a compact binary
// form rather than their JSON wire form: about 140 bytes instead of 360,
// for each of the two promises of every accept, which roughly halves the
// WAL an accept writes (docs/benchmarks.md). The form:
//
//	version 1 (1 byte)
//	chain id:   length n (1 byte, 0-32), n bytes big-endian, no leading zero byte
//	channel id: 32 bytes
//	amount:     length n, n bytes (as chain id)
//	fee:        length n, n bytes (as chain id)
//	hashlock:   32 bytes
//	signature:  payments.SignatureLength bytes
//
// Every promise has exactly one encoding, and decPromise refuses anything
// else (rows are only written by encPromise; a row that does not decode is
// corrupt).
const promiseFormat = 1

// maxPromiseBytes is the longest encoding (three 32-byte numbers).
const maxPromiseBytes = 1 + 3*(1+32) + 32 + 32 + payments.SignatureLength

// encPromise appends p's binary form to b. p must be valid (uint256
// numbers, payments.Promise.Validate) and signed.
func encPromise(b []byte, p *payments.Promise) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(p.Signature) != payments.SignatureLength {
		return nil, fmt.Errorf("store: promise signature of %d bytes", len(p.Signature))
	}
	b = append(b, promiseFormat)
	b = appendNum(b, p.ChainID)
	b = append(b, p.ChannelID[:]...)
	b = appendNum(b, p.Amount)
	b = appendNum(b, p.Fee)
	b = append(b, p.Hashlock[:]...)
	return append(b, p.Signature...), nil
}

// appendNum appends x's length and minimal big-endian bytes (x is a
// uint256).
func appendNum(b []byte, x *big.Int) []byte {
	n := (x.BitLen() + 7) / 8
	b = append(b, byte(n))
	start := len(b)
	b = append(b, make([]byte, n)...)
	x.FillBytes(b[start:])
	return b
}

// errCorruptPromise is wrapped by every decPromise failure.
var errCorruptPromise = errors.New("store: corrupt stored promise")

// decPromise decodes a promise stored by encPromise.
func decPromise(b []byte) (*payments.Promise, error) {
	if len(b) == 0 || b[0] != promiseFormat {
		return nil, fmt.Errorf("%w: not format %d", errCorruptPromise, promiseFormat)
	}
	r := promiseReader{b: b[1:]}
	p := &payments.Promise{ChainID: r.num()}
	copy(p.ChannelID[:], r.take(32))
	p.Amount, p.Fee = r.num(), r.num()
	copy(p.Hashlock[:], r.take(32))
	p.Signature = append([]byte(nil), r.take(payments.SignatureLength)...)
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the signature", errCorruptPromise, len(r.b))
	}
	return p, nil
}

// promiseReader reads decPromise's fields; the first failure sticks.
type promiseReader struct {
	b   []byte
	err error
}

func (r *promiseReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: %d bytes left, want %d", errCorruptPromise, len(r.b), n)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *promiseReader) num() *big.Int {
	l := r.take(1)
	if r.err != nil {
		return new(big.Int)
	}
	n := int(l[0])
	if n > 32 {
		r.err = fmt.Errorf("%w: number of %d bytes", errCorruptPromise, n)
		return new(big.Int)
	}
	v := r.take(n)
	if r.err == nil && n > 0 && v[0] == 0 {
		r.err = fmt.Errorf("%w: number with a leading zero byte", errCorruptPromise)
	}
	return new(big.Int).SetBytes(v)
}
