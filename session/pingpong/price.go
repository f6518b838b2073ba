package pingpong

import (
	"fmt"
	"math/big"
	"time"

	"github.com/openmyst/openmyst/payments"
)

// GiB is the byte unit prices are quoted in: 2^30 bytes.
const GiB = 1 << 30

// Price is an agreed session price in token wei.
type Price struct {
	// PerHour is charged per hour of session time.
	PerHour *big.Int
	// PerGiB is charged per GiB (2^30 bytes) of tunnel traffic, up plus
	// down.
	PerGiB *big.Int
}

// Validate checks that both parts are set and not negative.
func (p Price) Validate() error {
	if p.PerHour == nil || p.PerHour.Sign() < 0 {
		return fmt.Errorf("pingpong: price per hour %v must be set and not negative", p.PerHour)
	}
	if p.PerGiB == nil || p.PerGiB.Sign() < 0 {
		return fmt.Errorf("pingpong: price per GiB %v must be set and not negative", p.PerGiB)
	}
	return nil
}

// IsFree reports whether both parts are zero.
func (p Price) IsFree() bool { return p.PerHour.Sign() == 0 && p.PerGiB.Sign() == 0 }

// Total is the agreement total after elapsed session time and bytes of
// traffic, in wei (payments.PriceTotal): each term is rounded down on its
// own, so the total never exceeds the exact value and falls short of it by
// less than 2 wei. A negative elapsed counts as zero. Total is monotonic
// in both elapsed and bytes.
func (p Price) Total(elapsed time.Duration, bytes uint64) *big.Int {
	return payments.PriceTotal(p.PerHour, p.PerGiB, elapsed, bytes)
}
