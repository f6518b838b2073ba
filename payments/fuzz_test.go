package payments

import (
	"bytes"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func seedMessages(f *testing.F) (promise, invoice, exchange []byte) {
	m, s := validMessage(f)
	promise, _ = json.Marshal(m.Promise)
	exchange, _ = json.Marshal(m)
	iv := Invoice{ChainID: big.NewInt(1), AgreementID: big.NewInt(2), AgreementTotal: big.NewInt(3), TransactorFee: big.NewInt(0), Provider: s.Address()}
	if err := iv.Sign(s); err != nil {
		f.Fatal(err)
	}
	invoice, _ = json.Marshal(iv)
	return
}

func seedInvoiceV2(f *testing.F) []byte {
	_, s := validMessage(f)
	iv := Invoice{ChainID: big.NewInt(1), AgreementID: big.NewInt(2), AgreementTotal: big.NewInt(3), TransactorFee: big.NewInt(0), Provider: s.Address(),
		Usage: &Usage{ProposalSeq: 9, ElapsedMs: 1000, Bytes: 77}}
	if err := iv.Sign(s); err != nil {
		f.Fatal(err)
	}
	raw, _ := json.Marshal(iv)
	return raw
}

// roundTrip re-encodes a decoded value and checks the decoder accepts its
// own output unchanged.
func roundTrip[T any](t *testing.T, v T, decode func([]byte) (T, error)) {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("decoded value does not encode: %v", err)
	}
	again, err := decode(raw)
	if err != nil {
		t.Fatalf("own encoding rejected: %v", err)
	}
	raw2, _ := json.Marshal(again)
	if !bytes.Equal(raw, raw2) {
		t.Fatalf("round trip changed the message:\n%s\n%s", raw, raw2)
	}
}

func FuzzDecodePromise(f *testing.F) {
	p, _, _ := seedMessages(f)
	f.Add(p)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"chain_id":"1","channel_id":"0x00","amount":"-1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodePromise(data)
		if err != nil {
			return
		}
		if _, err := v.Digest(); err != nil {
			t.Fatalf("decoded promise has no digest: %v", err)
		}
		roundTrip(t, v, DecodePromise)
	})
}

func FuzzDecodeInvoice(f *testing.F) {
	_, iv, _ := seedMessages(f)
	f.Add(iv)
	f.Add(seedInvoiceV2(f))
	f.Add([]byte(`{"chain_id":"1"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeInvoice(data)
		if err != nil {
			return
		}
		_ = v.Verify() // must not panic
		roundTrip(t, v, DecodeInvoice)
	})
}

func FuzzDecodeExchangeMessage(f *testing.F) {
	_, _, m := seedMessages(f)
	f.Add(m)
	f.Add(bytes.Replace(m, []byte(`"chain_id":"1337"`), []byte(`"chain_id":"1"`), 1))
	f.Add([]byte(`{"promise":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeExchangeMessage(data)
		if err != nil {
			return
		}
		if v.ChainID.Cmp(v.Promise.ChainID) != 0 {
			t.Fatal("accepted a chain mismatch")
		}
		if c, err := v.RecoverConsumer(); err == nil && c == (common.Address{}) {
			t.Fatal("recovered the zero address")
		}
		roundTrip(t, v, DecodeExchangeMessage)
	})
}
