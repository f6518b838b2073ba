package transactor

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

// VoucherPrefix starts every voucher code.
const VoucherPrefix = "MYSTV1-"

// voucherLen is the binary voucher: chain id (8), transactor (20), sponsor
// (20), id (16), amount (32), expires (8), signature (65).
const voucherLen = 8 + 20 + 20 + 16 + 32 + 8 + identity.SignatureLength

// Voucher is a sponsor's signed promise to pay a new consumer's
// registration and a starter top-up of Amount MYST (moved from the
// sponsor's allowance to the transactor). It is single-use (by ID) and
// expires.
type Voucher struct {
	// ChainID and Transactor name where it is redeemable.
	ChainID    uint64
	Transactor common.Address
	// Sponsor signs the voucher and pays the top-up.
	Sponsor common.Address
	// ID makes the voucher unique; it is redeemed at most once.
	ID [16]byte
	// Amount is the starter top-up in MYST wei (may be zero).
	Amount *big.Int
	// Expires is when the voucher stops being redeemable.
	Expires time.Time
	// Signature is the sponsor's signature over Digest.
	Signature []byte
}

var tagVoucher = [32]byte{'m', 'y', 's', 't', '.', 'V', 'o', 'u', 'c', 'h', 'e', 'r'}

// Digest is what the sponsor signs.
func (v Voucher) Digest() [32]byte {
	return crypto.Keccak256Hash(tagVoucher[:], u64(v.ChainID), v.Transactor.Bytes(), v.Sponsor.Bytes(), v.ID[:], u256(v.Amount), u64(uint64(v.Expires.Unix())))
}

// NewVoucher makes and signs a voucher of sponsor for amount, valid for ttl.
func NewVoucher(sponsor identity.Signer, chainID uint64, transactor common.Address, amount *big.Int, ttl time.Duration, now time.Time) (Voucher, error) {
	if amount == nil || amount.Sign() < 0 || amount.BitLen() > 256 {
		return Voucher{}, errors.New("transactor: voucher amount must be a uint256")
	}
	if ttl <= 0 {
		return Voucher{}, errors.New("transactor: voucher lifetime must be positive")
	}
	v := Voucher{ChainID: chainID, Transactor: transactor, Sponsor: sponsor.Address(), Amount: new(big.Int).Set(amount), Expires: now.Add(ttl).Truncate(time.Second)}
	if _, err := rand.Read(v.ID[:]); err != nil {
		return Voucher{}, fmt.Errorf("transactor: voucher id: %w", err)
	}
	d := v.Digest()
	sig, err := sponsor.Sign(d[:])
	if err != nil {
		return Voucher{}, fmt.Errorf("transactor: sign voucher: %w", err)
	}
	v.Signature = sig
	return v, nil
}

// Code is the voucher as a printable code (VoucherPrefix + base64url).
func (v Voucher) Code() string {
	b := make([]byte, 0, voucherLen)
	b = binary.BigEndian.AppendUint64(b, v.ChainID)
	b = append(b, v.Transactor.Bytes()...)
	b = append(b, v.Sponsor.Bytes()...)
	b = append(b, v.ID[:]...)
	b = append(b, u256(v.Amount)...)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Expires.Unix()))
	b = append(b, v.Signature...)
	return VoucherPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// maxVoucherCode bounds a code's length before decoding.
const maxVoucherCode = len(VoucherPrefix) + (voucherLen*4+2)/3

// DecodeVoucher parses a voucher code and checks its form and that the
// sponsor signed it. Expiry and redemption are the transactor's checks.
func DecodeVoucher(code string) (Voucher, error) {
	code = strings.TrimSpace(code)
	if len(code) > maxVoucherCode {
		return Voucher{}, fmt.Errorf("transactor: voucher code is %d characters, at most %d", len(code), maxVoucherCode)
	}
	rest, ok := strings.CutPrefix(code, VoucherPrefix)
	if !ok {
		return Voucher{}, fmt.Errorf("transactor: voucher code does not start with %q", VoucherPrefix)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return Voucher{}, fmt.Errorf("transactor: voucher code: %w", err)
	}
	if len(b) != voucherLen {
		return Voucher{}, fmt.Errorf("transactor: voucher is %d bytes, want %d", len(b), voucherLen)
	}
	var v Voucher
	v.ChainID = binary.BigEndian.Uint64(b[0:8])
	v.Transactor = common.BytesToAddress(b[8:28])
	v.Sponsor = common.BytesToAddress(b[28:48])
	copy(v.ID[:], b[48:64])
	v.Amount = new(big.Int).SetBytes(b[64:96])
	exp := binary.BigEndian.Uint64(b[96:104])
	if exp == 0 || exp > 1<<40 {
		return Voucher{}, fmt.Errorf("transactor: voucher expiry %d is not a plausible unix time", exp)
	}
	v.Expires = time.Unix(int64(exp), 0)
	v.Signature = append([]byte(nil), b[104:]...)
	if v.ChainID == 0 || v.Sponsor == (common.Address{}) || v.Transactor == (common.Address{}) {
		return Voucher{}, errors.New("transactor: voucher without chain id, sponsor or transactor")
	}
	d := v.Digest()
	signer, err := identity.Recover(d[:], v.Signature)
	if err != nil {
		return Voucher{}, fmt.Errorf("transactor: voucher signature: %w", err)
	}
	if signer != v.Sponsor {
		return Voucher{}, fmt.Errorf("transactor: voucher signed by %s, not its sponsor %s", signer.Hex(), v.Sponsor.Hex())
	}
	return v, nil
}
