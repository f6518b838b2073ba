package paystore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common/math"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/storage"
)

// ErrNotFound is returned (wrapped) when a record does not exist.
var ErrNotFound = errors.New("paystore: not found")

const (
	secretPrefix   = "pingpong/secret/"
	exchangePrefix = "pingpong/exchange/"
	channelPrefix  = "pingpong/channel/"
)

var (
	_ pingpong.HashlockStore = (*Store)(nil)
	_ pingpong.ExchangeStore = (*Store)(nil)
	_ pingpong.Channel       = (*Channel)(nil)
)

// Store is the pay-as-you-go state in a node database. It is safe for
// concurrent use.
type Store struct {
	db *storage.DB
}

// New returns a Store over db.
func New(db *storage.DB) *Store { return &Store{db: db} }

func secretKey(lock [32]byte) []byte { return append([]byte(secretPrefix), lock[:]...) }

func exchangeKey(agreementID *big.Int) []byte {
	return append([]byte(exchangePrefix), math.U256Bytes(new(big.Int).Set(agreementID))...)
}

func checkID(name string, x *big.Int) error {
	if x == nil || x.Sign() < 0 || x.BitLen() > 256 {
		return fmt.Errorf("paystore: %s %v is not a uint256", name, x)
	}
	return nil
}

// Put durably stores the secret r of hashlock for agreementID
// (pingpong.HashlockStore). r must hash to hashlock; storing the same
// secret again is a no-op, and a different secret for a stored hashlock is
// refused.
func (s *Store) Put(ctx context.Context, hashlock [32]byte, r [32]byte, agreementID *big.Int) error {
	if err := s.db.Update(ctx, func(tx *storage.Tx) error { return PutSecretTx(tx, hashlock, r, agreementID) }); err != nil {
		return fmt.Errorf("paystore: store secret: %w", err)
	}
	return nil
}

// PutSecretTx is Put inside a caller's storage transaction, so a node can
// write the secret together with other records in one durable commit.
func PutSecretTx(tx *storage.Tx, hashlock [32]byte, r [32]byte, agreementID *big.Int) error {
	if payments.Hashlock(r[:]) != hashlock {
		return errors.New("paystore: secret does not hash to its hashlock")
	}
	if err := checkID("agreement id", agreementID); err != nil {
		return err
	}
	val := make([]byte, 0, 64)
	val = append(val, r[:]...)
	val = append(val, math.U256Bytes(new(big.Int).Set(agreementID))...)
	old, ok, err := tx.Get(storage.BucketPromises, secretKey(hashlock))
	if err != nil {
		return err
	}
	if ok {
		if string(old) == string(val) {
			return nil
		}
		return fmt.Errorf("paystore: hashlock %x already stored with another secret or agreement", hashlock[:6])
	}
	return tx.Put(storage.BucketPromises, secretKey(hashlock), val)
}

// Secret returns the stored secret of hashlock and its agreement id.
func (s *Store) Secret(ctx context.Context, hashlock [32]byte) (r [32]byte, agreementID *big.Int, err error) {
	var val []byte
	var ok bool
	err = s.db.View(ctx, func(tx *storage.Tx) error {
		val, ok, err = tx.Get(storage.BucketPromises, secretKey(hashlock))
		return err
	})
	if err != nil {
		return r, nil, fmt.Errorf("paystore: read secret: %w", err)
	}
	if !ok {
		return r, nil, fmt.Errorf("%w: secret for hashlock %x", ErrNotFound, hashlock[:6])
	}
	if len(val) != 64 {
		return r, nil, fmt.Errorf("paystore: secret record for %x is %d bytes, want 64", hashlock[:6], len(val))
	}
	copy(r[:], val[:32])
	if payments.Hashlock(r[:]) != hashlock {
		return r, nil, fmt.Errorf("paystore: secret record for %x is corrupt", hashlock[:6])
	}
	return r, new(big.Int).SetBytes(val[32:]), nil
}

// PutExchange durably stores em as the latest exchange message of its
// agreement (pingpong.ExchangeStore). A message whose agreement total is
// not above the stored one is ignored, so the record never goes back.
func (s *Store) PutExchange(ctx context.Context, em *payments.ExchangeMessage) error {
	if em == nil {
		return errors.New("paystore: nil exchange message")
	}
	raw, err := em.MarshalJSON()
	if err != nil {
		return fmt.Errorf("paystore: encode exchange message: %w", err)
	}
	key := exchangeKey(em.AgreementID)
	err = s.db.Update(ctx, func(tx *storage.Tx) error {
		old, ok, err := tx.Get(storage.BucketPromises, key)
		if err != nil {
			return err
		}
		if ok {
			prev, err := payments.DecodeExchangeMessage(old)
			if err != nil {
				return fmt.Errorf("stored exchange message: %w", err)
			}
			if em.AgreementTotal.Cmp(prev.AgreementTotal) <= 0 {
				return nil
			}
		}
		return tx.Put(storage.BucketPromises, key, raw)
	})
	if err != nil {
		return fmt.Errorf("paystore: store exchange message: %w", err)
	}
	return nil
}

// LatestExchange returns the stored exchange message of agreementID.
func (s *Store) LatestExchange(ctx context.Context, agreementID *big.Int) (*payments.ExchangeMessage, error) {
	if err := checkID("agreement id", agreementID); err != nil {
		return nil, err
	}
	var raw []byte
	var ok bool
	err := s.db.View(ctx, func(tx *storage.Tx) error {
		var err error
		raw, ok, err = tx.Get(storage.BucketPromises, exchangeKey(agreementID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("paystore: read exchange message: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: exchange message for agreement %s", ErrNotFound, agreementID)
	}
	em, err := payments.DecodeExchangeMessage(raw)
	if err != nil {
		return nil, fmt.Errorf("paystore: stored exchange message for agreement %s: %w", agreementID, err)
	}
	return em, nil
}

// Resume loads what a restarted provider needs to continue agreementID:
// its latest exchange message and that message's secret. It returns an
// error wrapping ErrNotFound when the consumer never paid.
func (s *Store) Resume(ctx context.Context, agreementID *big.Int) (*pingpong.Resume, error) {
	em, err := s.LatestExchange(ctx, agreementID)
	if err != nil {
		return nil, err
	}
	r, _, err := s.Secret(ctx, em.Promise.Hashlock)
	if err != nil {
		return nil, err
	}
	return &pingpong.Resume{Exchange: em, R: r}, nil
}

// Channel is a consumer's channel ledger (pingpong.Channel): the
// cumulative amount promised on one channel, kept durably, checked against
// the channel balance the consumer knows. Create one per channel and share
// it between all of that consumer's sessions. Safe for concurrent use.
type Channel struct {
	store *Store
	key   []byte
	id    [32]byte

	mu      sync.Mutex
	balance *big.Int
}

// Channel returns the ledger of channel id on chainID, which may promise
// at most balance in total (see SetBalance).
func (s *Store) Channel(chainID *big.Int, id [32]byte, balance *big.Int) (*Channel, error) {
	if err := checkID("chain id", chainID); err != nil {
		return nil, err
	}
	if err := checkID("balance", balance); err != nil {
		return nil, err
	}
	key := append([]byte(channelPrefix), math.U256Bytes(new(big.Int).Set(chainID))...)
	key = append(key, id[:]...)
	return &Channel{store: s, key: key, id: id, balance: new(big.Int).Set(balance)}, nil
}

// ID implements pingpong.Channel.
func (c *Channel) ID() [32]byte { return c.id }

// SetBalance updates the channel balance the ledger checks against, e.g.
// after a top-up is seen on chain.
func (c *Channel) SetBalance(balance *big.Int) error {
	if err := checkID("balance", balance); err != nil {
		return err
	}
	c.mu.Lock()
	c.balance = new(big.Int).Set(balance)
	c.mu.Unlock()
	return nil
}

func (c *Channel) promisedTx(tx *storage.Tx) (*big.Int, error) {
	raw, ok, err := tx.Get(storage.BucketPromises, c.key)
	if err != nil || !ok {
		return new(big.Int), err
	}
	v, err := money.ParseWei(string(raw))
	if err != nil {
		return nil, fmt.Errorf("channel record is corrupt: %w", err)
	}
	return v, nil
}

// Promised returns the cumulative amount promised on the channel.
func (c *Channel) Promised(ctx context.Context) (*big.Int, error) {
	var v *big.Int
	err := c.store.db.View(ctx, func(tx *storage.Tx) error {
		var err error
		v, err = c.promisedTx(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("paystore: read channel ledger: %w", err)
	}
	return v, nil
}

// Raise implements pingpong.Channel: it adds delta to the cumulative
// amount in one durable transaction, or fails with
// pingpong.ErrInsufficientBalance and changes nothing.
func (c *Channel) Raise(ctx context.Context, delta *big.Int) (*big.Int, error) {
	if delta == nil || delta.Sign() <= 0 {
		return nil, fmt.Errorf("paystore: raise by %v: must be positive", delta)
	}
	c.mu.Lock()
	balance := new(big.Int).Set(c.balance)
	c.mu.Unlock()
	var next *big.Int
	err := c.store.db.Update(ctx, func(tx *storage.Tx) error {
		cur, err := c.promisedTx(tx)
		if err != nil {
			return err
		}
		next = cur.Add(cur, delta)
		if next.Cmp(balance) > 0 {
			return fmt.Errorf("%w: promising %s in total would exceed the channel balance %s", pingpong.ErrInsufficientBalance, next, balance)
		}
		return tx.Put(storage.BucketPromises, c.key, []byte(next.String()))
	})
	if err != nil {
		if errors.Is(err, pingpong.ErrInsufficientBalance) {
			return nil, err
		}
		return nil, fmt.Errorf("paystore: raise channel ledger: %w", err)
	}
	return next, nil
}

// AtLeast raises the ledger to amount if it is lower, e.g. to the last
// promise the hermes holds for this channel when a node starts with a
// fresh database. It never lowers the ledger.
func (c *Channel) AtLeast(ctx context.Context, amount *big.Int) error {
	if err := checkID("amount", amount); err != nil {
		return err
	}
	err := c.store.db.Update(ctx, func(tx *storage.Tx) error {
		cur, err := c.promisedTx(tx)
		if err != nil {
			return err
		}
		if cur.Cmp(amount) >= 0 {
			return nil
		}
		return tx.Put(storage.BucketPromises, c.key, []byte(amount.String()))
	})
	if err != nil {
		return fmt.Errorf("paystore: sync channel ledger: %w", err)
	}
	return nil
}
