package sessionproto

import (
	"encoding/json"
	"fmt"

	"github.com/openmyst/openmyst/payments"
)

// NewInvoice wraps a payments invoice for the wire.
func NewInvoice(iv *payments.Invoice) (*Invoice, error) {
	raw, err := json.Marshal(iv)
	if err != nil {
		return nil, fmt.Errorf("sessionproto: encode invoice: %w", err)
	}
	return &Invoice{Invoice: raw}, nil
}

// Payment decodes the embedded invoice strictly with the payments decoder.
// It checks the format only; the caller verifies the signature and amounts.
func (m *Invoice) Payment() (*payments.Invoice, error) {
	iv, err := payments.DecodeInvoice(m.Invoice)
	if err != nil {
		return nil, fmt.Errorf("sessionproto: %w", err)
	}
	return iv, nil
}

// NewExchangeMessage wraps a payments exchange message for the wire.
func NewExchangeMessage(em *payments.ExchangeMessage) (*ExchangeMessage, error) {
	raw, err := json.Marshal(em)
	if err != nil {
		return nil, fmt.Errorf("sessionproto: encode exchange message: %w", err)
	}
	return &ExchangeMessage{ExchangeMessage: raw}, nil
}

// Payment decodes the embedded exchange message strictly with the payments
// decoder. It checks the format only; the caller verifies signatures and
// amounts.
func (m *ExchangeMessage) Payment() (*payments.ExchangeMessage, error) {
	em, err := payments.DecodeExchangeMessage(m.ExchangeMessage)
	if err != nil {
		return nil, fmt.Errorf("sessionproto: %w", err)
	}
	return em, nil
}
