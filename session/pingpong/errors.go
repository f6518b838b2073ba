package pingpong

import (
	"errors"

	"github.com/openmyst/openmyst/payments"
)

// Errors that end a session. Callers map them to sessionproto error codes
// (payment_timeout, overcharge, insufficient_funds, bad_request).
var (
	// ErrPaymentTimeout: an invoice stayed unpaid longer than the grace
	// period (provider side).
	ErrPaymentTimeout = errors.New("pingpong: payment timeout")
	// ErrUnpaidLimit: the value served but not paid passed the cap
	// (provider side).
	ErrUnpaidLimit = errors.New("pingpong: unpaid value over limit")
	// ErrBadExchange: the consumer sent an exchange message that does not
	// pay an outstanding invoice correctly (provider side).
	ErrBadExchange = errors.New("pingpong: bad exchange message")
	// ErrHermesRejected is wrapped by a Hermes implementation when the
	// hermes refuses an exchange message for good (bad signature, channel
	// balance exceeded, ...), as opposed to being unreachable. The tracker
	// ends the session on it and retries on any other hermes error.
	ErrHermesRejected = errors.New("pingpong: hermes rejected the exchange message")
	// ErrOvercharge: an invoice asks for more than the fair total plus the
	// tolerance (consumer side). Nothing was promised for it.
	ErrOvercharge = errors.New("pingpong: invoice overcharges")
	// ErrBadInvoice: an invoice is malformed, not signed by the provider,
	// for another agreement or chain, or lower than one already paid
	// (consumer side).
	ErrBadInvoice = errors.New("pingpong: bad invoice")
	// ErrInsufficientBalance: paying an invoice would promise more than
	// the consumer's channel balance (consumer side).
	ErrInsufficientBalance = errors.New("pingpong: channel balance insufficient")
)

// ErrUndelivered is wrapped by a TrackerConfig.Send error that does not end
// the session: the invoice could not reach the consumer now (a resumable
// session's stream is lost) but may later. The tracker counts the invoice
// as sent (its grace runs) and re-sends it when told the consumer is back
// (InvoiceTracker.Redeliver).
var ErrUndelivered = errors.New("pingpong: invoice not delivered")

// OverchargeError is the error HandleInvoice returns for an invoice above
// the allowed total. It wraps ErrOvercharge and carries the refused,
// provider-signed invoice so the caller can turn it into a fraud proof
// (package quality) when the invoice's own Usage shows the overcharge.
type OverchargeError struct {
	// Invoice is the refused invoice, signature verified.
	Invoice *payments.Invoice
	err     error
}

// Error implements error.
func (e *OverchargeError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error (which wraps ErrOvercharge).
func (e *OverchargeError) Unwrap() error { return e.err }
