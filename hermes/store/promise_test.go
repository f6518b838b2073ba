package store

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
)

func testPromise(t testing.TB, amount *big.Int) payments.Promise {
	t.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("store promise test")))
	if err != nil {
		t.Fatal(err)
	}
	p := payments.Promise{ChainID: big.NewInt(1337), ChannelID: payments.ConsumerChannelID(common.HexToAddress("0xcc")),
		Amount: amount, Fee: big.NewInt(0), Hashlock: payments.Hashlock([]byte("r"))}
	if err := p.Sign(identity.NewKeySigner(k)); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPromiseEncoding: every promise survives encPromise/decPromise, the
// form is much smaller than the JSON form, and malformed forms (truncated,
// trailing bytes, oversized or non-minimal numbers, unknown format) fail.
func TestPromiseEncoding(t *testing.T) {
	max256 := new(big.Int).Set(math.MaxBig256)
	for _, amount := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(255), big.NewInt(256), big.NewInt(1e18), max256} {
		p := testPromise(t, amount)
		b, err := encPromise(nil, &p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decPromise(b)
		if err != nil || !back.Equal(&p) {
			t.Fatalf("amount %s: decoded %+v %v, want %+v", amount, back, err, p)
		}
		js, _ := p.MarshalJSON()
		if amount.Cmp(max256) != 0 && 2*len(b) > len(js) {
			t.Fatalf("amount %s: %d bytes binary, %d JSON: want less than half", amount, len(b), len(js))
		}
	}
	p := testPromise(t, big.NewInt(1000))
	good, _ := encPromise(nil, &p)
	bad := map[string][]byte{
		"empty":          nil,
		"format 2":       append([]byte{2}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing byte":  append(append([]byte(nil), good...), 0),
		"33-byte number": append([]byte{1, 33}, make([]byte, 33)...),
		"leading zero":   append([]byte{1, 2, 0, 1}, good[4:]...),
	}
	for name, b := range bad {
		if _, err := decPromise(b); !errors.Is(err, errCorruptPromise) {
			t.Errorf("%s: decPromise err %v, want errCorruptPromise", name, err)
		}
	}
	p.Signature = p.Signature[:64]
	if _, err := encPromise(nil, &p); err == nil {
		t.Error("encPromise took a 64-byte signature")
	}
}

// FuzzDecPromise: decPromise never panics, and whatever it accepts is the
// one encoding of its promise (re-encodes to the same bytes).
func FuzzDecPromise(f *testing.F) {
	p := testPromise(f, big.NewInt(123456))
	good, _ := encPromise(nil, &p)
	f.Add(good)
	f.Add([]byte{1})
	f.Add(append([]byte{1, 2, 0, 1}, good[4:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decPromise(b)
		if err != nil {
			return
		}
		again, err := encPromise(nil, p)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %x to %+v, which encodes to %x %v", b, p, again, err)
		}
	})
}

// testJSONRowsAfterMigration6 stores a row the way schema 5 did (promises
// as JSON), migrates, and reads it back next to a row written since
// (binary promises).
func testJSONRowsAfterMigration6(t *testing.T, old *sqlStore, reopen func() Store) {
	ctx := context.Background()
	old.maxVersion = 5
	if err := old.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cp, hp := testPromise(t, big.NewInt(100)), testPromise(t, big.NewInt(90))
	hp.ChannelID[0] = 7
	cj, _ := cp.MarshalJSON()
	hj, _ := hp.MarshalJSON()
	digest := crypto.Keccak256Hash([]byte("old row"))
	provider := "0x00000000000000000000000000000000000000a1"
	if _, err := old.w.ExecContext(ctx, old.q(`INSERT INTO exchanges (digest, consumer, consumer_seq, provider, provider_seq, channel, agreement_id, agreement_total, hashlock,
		consumer_amount, promise_amount, consumed, consumer_promise, hermes_amount, hermes_promise, exchange_signature, created_at)
		VALUES (?, ?, 1, ?, 1, '0xcc', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`),
		digest[:], "0x00000000000000000000000000000000000000c1", provider, encAmount(big.NewInt(1)), encAmount(big.NewInt(100)), cp.Hashlock[:],
		encAmount(big.NewInt(100)), encAmount(big.NewInt(100)), encAmount(big.NewInt(100)), string(cj), encAmount(big.NewInt(90)), string(hj), []byte{1}); err != nil {
		t.Fatal(err)
	}
	s := reopen()
	defer s.Close()
	e, err := s.ExchangeByDigest(ctx, cp.Hashlock, digest)
	if err != nil || !e.ConsumerPromise.Equal(&cp) || !e.HermesPromise.Equal(&hp) {
		t.Fatalf("row stored as JSON before migration 6: %+v %v", e, err)
	}
	e, err = s.LatestProviderExchange(ctx, common.HexToAddress(provider))
	if err != nil || !e.HermesPromise.Equal(&hp) {
		t.Fatalf("latest provider exchange: %+v %v", e, err)
	}
	var n int
	if err := old.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM exchanges WHERE consumer_promise_bin IS NULL AND hermes_promise_bin IS NULL`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows without binary promises after the migration: %d %v, want 1", n, err)
	}
}

func TestSQLiteJSONRowsAfterMigration6(t *testing.T) {
	old, reopen := unmigratedSQLite(t)
	testJSONRowsAfterMigration6(t, old, reopen)
}

func TestPostgresJSONRowsAfterMigration6(t *testing.T) {
	old, reopen := unmigratedPostgres(t)
	testJSONRowsAfterMigration6(t, old, reopen)
}
