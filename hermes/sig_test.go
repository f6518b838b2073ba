package hermes

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/openmyst/openmyst/hermes/store/storetest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/identity/sigtest"
	"github.com/openmyst/openmyst/payments"
)

// TestExchangeRefusesHighSConsumerPromise: a consumer promise whose
// signature is the high-s twin of a valid one recovers to the consumer
// with plain ecrecover, but the consumer channel's settlePromise refuses it
// (Sig.sol BadSignature), so the hermes could never settle it. The hermes
// refuses it, stores nothing and issues no provider promise, both through
// Exchange and over HTTP; the same holds for a high-s exchange-message
// signature.
func TestExchangeRefusesHighSConsumerPromise(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	c, prov := parties(e.chain)
	h := e.svc.Handler(e.reg)

	for name, malleate := range map[string]func(*payments.ExchangeMessage){
		"promise signature":          func(m *payments.ExchangeMessage) { m.Promise.Signature = sigtest.HighS(m.Promise.Signature) },
		"exchange message signature": func(m *payments.ExchangeMessage) { m.Signature = sigtest.HighS(m.Signature) },
	} {
		m := msg(t, c, prov, 1, 100, 100, secret(name))
		malleate(m)
		res, err := e.svc.Exchange(ctx, m)
		var he *Error
		if !errors.As(err, &he) || he.Code != CodeBadSignature || !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("%s: Exchange = %+v, %v; want %s", name, res, err, CodeBadSignature)
		}
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := post(t, h, "/v1/exchange", raw); code != CodeBadSignature.HTTPStatus() || errCode(t, body) != CodeBadSignature {
			t.Fatalf("%s over HTTP: %d %s, want %d %s", name, code, body, CodeBadSignature.HTTPStatus(), CodeBadSignature)
		}
	}
	if n := storetest.Exchanges(t, e.st); n != 0 {
		t.Fatalf("%d exchanges stored, want none", n)
	}
	if pv, err := e.svc.Provider(ctx, prov); err == nil && pv.Earned != nil && pv.Earned.Sign() != 0 {
		t.Fatalf("provider credited %s for promises the chain refuses", pv.Earned)
	}

	// The honest message with the same fields is accepted.
	m := msg(t, c, prov, 1, 100, 100, secret("honest"))
	if _, err := e.svc.Exchange(ctx, m); err != nil {
		t.Fatalf("honest message: %v", err)
	}
}
