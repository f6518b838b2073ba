package store

import (
	"context"
	"errors"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

// ErrConflict is returned when a versioned row changed underneath a write
// (another hermes process, or a duplicate exchange digest). Nothing of the
// failed transaction is stored; the caller reloads its state and retries.
var ErrConflict = errors.New("store: concurrent update conflict")

// ErrNotFound is returned when a requested record does not exist.
var ErrNotFound = errors.New("store: not found")

// Consumer is the hermes's state for one consumer identity.
type Consumer struct {
	// Identity is the consumer's identity address.
	Identity common.Address
	// Channel is the consumer's channel contract address.
	Channel common.Address
	// Promised is the highest consumer promise amount accepted (cumulative
	// over the channel, across all providers).
	Promised *big.Int
	// Consumed is the sum of the agreement deltas accepted from the
	// consumer (what the hermes has promised providers on its behalf). A
	// consumer runs several sessions at once, so its promises can reach the
	// hermes out of order; Consumed <= Promised always holds.
	Consumed *big.Int
	// Settled is the cumulative amount settled on chain, as last reconciled.
	Settled *big.Int
	// Version counts the consumer's accepted exchanges; 0: none yet.
	Version int64
}

// Agreement is the cumulative total accepted for one agreement between a
// consumer and a provider.
type Agreement struct {
	// Consumer is the paying identity.
	Consumer common.Address
	// Provider is the paid identity.
	Provider common.Address
	// AgreementID identifies the agreement.
	AgreementID *big.Int
	// Total is the highest agreement total accepted.
	Total *big.Int
}

// Provider is the hermes's state for one provider identity.
type Provider struct {
	// Identity is the provider's identity address.
	Identity common.Address
	// Earned is the cumulative amount of the hermes promises issued to the
	// provider (the latest hermes promise amount).
	Earned *big.Int
	// Unrevealed counts issued promises whose secret R is not revealed yet.
	Unrevealed int64
	// Version counts the provider's accepted exchanges; 0: none yet.
	Version int64
}

// Exchange is one accepted exchange message and the hermes promise issued
// for it.
type Exchange struct {
	// Seq is the store's insertion order (assigned by the store).
	Seq int64
	// Digest is the exchange message digest (the idempotency key).
	Digest [32]byte
	// Consumer is the identity that signed the message.
	Consumer common.Address
	// Provider is the identity paid.
	Provider common.Address
	// AgreementID and AgreementTotal are copied from the message.
	AgreementID, AgreementTotal *big.Int
	// ConsumerPromise is the consumer's signed promise.
	ConsumerPromise payments.Promise
	// HermesPromise is the operator-signed promise issued to the provider.
	HermesPromise payments.Promise
	// ExchangeSignature is the consumer's signature over the message.
	ExchangeSignature []byte
	// R is the revealed secret for the hashlock, nil until revealed.
	R []byte
	// CreatedAt is when the exchange was stored.
	CreatedAt time.Time
}

// Accept is everything one accepted exchange message writes. Consumer and
// Provider hold the NEW amounts (Consumer.Settled is not written: see
// SetSettled); their Version fields hold the version the write extends
// (0: nothing accepted for that identity yet). The agreement total is the
// exchange's.
type Accept struct {
	// Exchange is the new journal row.
	Exchange Exchange
	// Consumer is the consumer's new state.
	Consumer Consumer
	// Provider is the provider's new state.
	Provider Provider
}

// Settlement records one on-chain settlement of a consumer promise.
type Settlement struct {
	// Consumer is the settled channel's owner.
	Consumer common.Address
	// Amount is the cumulative promise amount settled.
	Amount *big.Int
	// TxHash is the settlement transaction.
	TxHash common.Hash
	// At is when the settlement was sent.
	At time.Time
}

// Store is the hermes's durable state.
type Store interface {
	// Consumer returns a consumer's state and its agreements; a consumer
	// never seen has Version 0 and zero amounts.
	Consumer(ctx context.Context, id common.Address) (Consumer, []Agreement, error)
	// Provider returns a provider's state (Version 0 if never seen).
	Provider(ctx context.Context, id common.Address) (Provider, error)
	// ExchangeByDigest returns the exchange stored under digest, whose
	// promise is locked by hashlock (the index is on both), or ErrNotFound.
	ExchangeByDigest(ctx context.Context, hashlock, digest [32]byte) (Exchange, error)
	// LatestProviderExchange returns the exchange holding the provider's
	// latest (highest) hermes promise, or ErrNotFound.
	LatestProviderExchange(ctx context.Context, provider common.Address) (Exchange, error)
	// Commit stores all accepts in one durable transaction, or nothing
	// (ErrConflict when a version check fails).
	Commit(ctx context.Context, accepts []Accept) error
	// RevealR stores r for the provider's exchanges locked by keccak(r) and
	// returns how many were newly revealed (0 on a retry); ErrNotFound if
	// the provider has no exchange with that hashlock.
	RevealR(ctx context.Context, provider common.Address, hashlock [32]byte, r []byte) (int, error)
	// SettleCandidate returns the consumer's exchange with the highest
	// promise amount among those whose R is revealed, or ErrNotFound.
	SettleCandidate(ctx context.Context, consumer common.Address) (Exchange, error)
	// Consumers lists every consumer's state.
	Consumers(ctx context.Context) ([]Consumer, error)
	// SetSettled raises a consumer's settled amount to settled (never lowers
	// it) and records s when non-nil.
	SetSettled(ctx context.Context, consumer common.Address, settled *big.Int, s *Settlement) error
	// AcquireLease takes the named lease for holder until now+ttl, or
	// renews it when holder has it already. It returns false, writing
	// nothing, while another holder's lease has not expired at now.
	// Holders on several hosts compare their own clocks: leases assume
	// clocks agree to well within ttl.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease ends holder's lease on name; it does nothing when
	// holder does not hold it.
	ReleaseLease(ctx context.Context, name, holder string) error
	// Settlements lists a consumer's recorded settlements, oldest first.
	Settlements(ctx context.Context, consumer common.Address) ([]Settlement, error)
	// Stats returns totals over the whole store (for checks and metrics).
	Stats(ctx context.Context) (Stats, error)
	// Close releases the database.
	Close() error
}

// MaxLoadBatch is the most identities one BatchLoader call may read.
const MaxLoadBatch = 256

// ConsumerState is one consumer's state and agreements, as Store.Consumer
// returns them.
type ConsumerState struct {
	Consumer   Consumer
	Agreements []Agreement
}

// BatchLoader is implemented by stores that read several identities'
// state at once (PostgreSQL: one statement per call instead of one per
// identity). Each identity's state is what Consumer or Provider would
// return for it, read from one snapshot; ids may repeat and may be
// unknown (zero state, Version 0); more than MaxLoadBatch ids is an
// error. The results are in the order of ids.
type BatchLoader interface {
	LoadConsumers(ctx context.Context, ids []common.Address) ([]ConsumerState, error)
	LoadProviders(ctx context.Context, ids []common.Address) ([]Provider, error)
}

// ConcurrentCommitter is implemented by stores whose Commit may run on
// several connections at once.
type ConcurrentCommitter interface {
	// Committers is how many Commit calls may usefully run at once.
	Committers() int
}

// Committers is how many Commit calls st may usefully run at once: its
// ConcurrentCommitter answer, else 1.
func Committers(st Store) int {
	if c, ok := st.(ConcurrentCommitter); ok {
		return max(1, c.Committers())
	}
	return 1
}

// Stats are whole-store totals.
type Stats struct {
	// Exchanges is the number of accepted exchange messages.
	Exchanges int64
	// Consumers and Providers count known identities.
	Consumers, Providers int64
	// SchemaVersion is the latest applied migration.
	SchemaVersion int
}
