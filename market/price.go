package market

import "github.com/openmyst/openmyst/money"

// Price is what a provider charges, set by the provider.
type Price struct {
	// PerHour is charged per hour of session time, in wei.
	PerHour money.Amount `json:"per_hour"`
	// PerGiB is charged per GiB (2^30 bytes) transferred, in wei.
	PerGiB money.Amount `json:"per_gib"`
}
