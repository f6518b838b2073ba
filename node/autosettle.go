package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
)

// Settlement triggers, recorded in the history.
const (
	// TriggerManual: POST /settle or `myst service settle`.
	TriggerManual = "manual"
	// TriggerAuto: the periodic check of a SettlePolicy.
	TriggerAuto = "auto"
	// TriggerShutdown: the check at provider shutdown.
	TriggerShutdown = "shutdown"
)

// Settlement statuses, recorded in the history.
const (
	// StatusPending: recorded before the transaction is sent; a record
	// left pending means the process stopped before the outcome was known
	// (the chain has the truth: the next Earnings shows it).
	StatusPending = "pending"
	// StatusSettled: the transaction was mined.
	StatusSettled = "settled"
	// StatusFailed: the attempt failed; Error says why.
	StatusFailed = "failed"
)

// Default auto-settlement policy (docs/node.md explains the choice).
var (
	// DefaultSettleThreshold: 5 MYST unsettled. Settling costs gas on every
	// attempt; below a few MYST a provider would pay a large share of its
	// earnings in fees.
	DefaultSettleThreshold = money.MYST(5)
)

const (
	// DefaultMaxFeeShareBps: fees (hermes + transactor) at most 10% of
	// what a settlement pays.
	DefaultMaxFeeShareBps = 1000
	// DefaultSettleInterval: how often the earnings are checked.
	DefaultSettleInterval = 10 * time.Minute
	// shutdownSettleTimeout bounds the settlement at shutdown.
	shutdownSettleTimeout = 30 * time.Second
)

// maxHistory is how many settlement records the history keeps (oldest
// dropped first); a variable for tests.
var maxHistory = 10_000

// SettlePolicy says when a provider settles its hermes earnings on its
// own: when the unsettled amount reaches Threshold and the fees (the
// hermes fee on it plus the promise's transactor fee) are at most
// MaxFeeShareBps of it; checked every Interval and, with AtShutdown, when
// the provider stops.
type SettlePolicy struct {
	// Threshold is the least unsettled amount (wei) worth settling.
	Threshold *big.Int
	// MaxFeeShareBps is the largest fee share, in basis points (1/10000)
	// of the amount settled.
	MaxFeeShareBps uint16
	// Interval is how often the earnings are checked.
	Interval time.Duration
	// AtShutdown also checks (and settles) when the provider stops.
	AtShutdown bool
}

// Validate checks the policy.
func (p SettlePolicy) Validate() error {
	if p.Threshold == nil || p.Threshold.Sign() <= 0 {
		return errors.New("node: settle policy: threshold must be above zero")
	}
	if p.MaxFeeShareBps > 10000 {
		return fmt.Errorf("node: settle policy: max fee share %d bps is above 100%%", p.MaxFeeShareBps)
	}
	if p.Interval < time.Second {
		return fmt.Errorf("node: settle policy: interval %s is below 1s", p.Interval)
	}
	return nil
}

// SettleQuote is what settling now would do.
type SettleQuote struct {
	// Amount is the latest hermes promise (cumulative, wei).
	Amount *big.Int
	// Unsettled is what the settlement pays before fees (wei).
	Unsettled *big.Int
	// HermesFee is the hermes's fee on Unsettled at its current rate.
	HermesFee *big.Int
	// TransactorFee is the promise's fee to whoever submits it.
	TransactorFee *big.Int
	// Beneficiary receives the payout.
	Beneficiary common.Address
}

// Fees are HermesFee + TransactorFee.
func (q SettleQuote) Fees() *big.Int { return new(big.Int).Add(q.HermesFee, q.TransactorFee) }

// Decide says whether p would settle q, and if not, why.
func (p SettlePolicy) Decide(q SettleQuote) (bool, string) {
	if q.Unsettled == nil || q.Unsettled.Sign() <= 0 {
		return false, "nothing to settle"
	}
	if q.Unsettled.Cmp(p.Threshold) < 0 {
		return false, fmt.Sprintf("unsettled %s wei is below the threshold %s wei", q.Unsettled, p.Threshold)
	}
	// fees / unsettled <= bps / 10000  <=>  fees*10000 <= bps*unsettled
	lhs := new(big.Int).Mul(q.Fees(), big.NewInt(10000))
	rhs := new(big.Int).Mul(q.Unsettled, big.NewInt(int64(p.MaxFeeShareBps)))
	if lhs.Cmp(rhs) > 0 {
		return false, fmt.Sprintf("fees %s wei are more than %d bps of %s wei", q.Fees(), p.MaxFeeShareBps, q.Unsettled)
	}
	return true, ""
}

// Quote reads what settling now would pay and cost.
func (p *Settler) Quote(ctx context.Context) (SettleQuote, error) {
	v, err := p.Client.Provider(ctx, p.Provider.Hex())
	if err != nil {
		return SettleQuote{}, fmt.Errorf("node: hermes view: %w", err)
	}
	q := SettleQuote{Amount: new(big.Int), Unsettled: new(big.Int), HermesFee: new(big.Int), TransactorFee: new(big.Int)}
	if v.LatestPromise == nil {
		return q, nil
	}
	q.Amount.Set(v.LatestPromise.Amount)
	if v.LatestPromise.Fee != nil {
		q.TransactorFee.Set(v.LatestPromise.Fee)
	}
	pc, err := p.Chain.ProviderChannel(ctx, p.Hermes, p.Provider)
	if err != nil {
		return SettleQuote{}, fmt.Errorf("node: provider channel: %w", err)
	}
	q.Unsettled.Set(q.Amount)
	if pc.Settled != nil {
		q.Unsettled.Sub(q.Unsettled, pc.Settled)
	}
	if q.Unsettled.Sign() < 0 {
		q.Unsettled.SetInt64(0)
	}
	terms, err := p.Chain.HermesTerms(ctx, p.Hermes)
	if err != nil {
		return SettleQuote{}, fmt.Errorf("node: hermes terms: %w", err)
	}
	q.HermesFee.Mul(q.Unsettled, big.NewInt(int64(terms.FeeBps)))
	q.HermesFee.Quo(q.HermesFee, big.NewInt(10000))
	if q.Beneficiary, err = p.Chain.Beneficiary(ctx, p.Provider); err != nil {
		return SettleQuote{}, fmt.Errorf("node: beneficiary: %w", err)
	}
	return q, nil
}

// SettlementRecord is one settlement attempt in a provider's history.
// Amounts are decimal wei.
type SettlementRecord struct {
	// ID orders the records (increasing).
	ID uint64 `json:"id"`
	// Time is when the attempt started.
	Time time.Time `json:"time"`
	// Trigger is TriggerManual, TriggerAuto or TriggerShutdown.
	Trigger string `json:"trigger"`
	// Status is StatusPending, StatusSettled or StatusFailed.
	Status string `json:"status"`
	// Attempt counts the attempts at this Amount, this one included (a
	// retry after a failure has Attempt > 1).
	Attempt int `json:"attempt"`
	// Tx is the settlement transaction (settled only).
	Tx string `json:"tx,omitempty"`
	// Amount is the cumulative hermes promise being settled.
	Amount string `json:"amount"`
	// Unsettled is what the settlement pays before fees.
	Unsettled string `json:"unsettled"`
	// HermesFee and TransactorFee are the fees quoted for it.
	HermesFee     string `json:"hermes_fee"`
	TransactorFee string `json:"transactor_fee"`
	// Beneficiary receives the payout.
	Beneficiary string `json:"beneficiary"`
	// Error is why the attempt failed.
	Error string `json:"error,omitempty"`
}

// settlementsBucket holds the history: big-endian ID → JSON record.
const settlementsBucket = "provider-settlements"

// settlementCountsBucket holds how many records of settlementsBucket have
// each status (status → big-endian uint64), kept in the same transaction
// as every change of the history so that GET /metrics reads three keys
// instead of decoding up to maxHistory records; its key countsReady marks
// that the counts cover the whole history (a database written before
// the counts existed gets them counted once, when opened).
const settlementCountsBucket = "provider-settlement-counts"

var countsReady = []byte("ready")

// settlementStatuses are the statuses the counts keep.
var settlementStatuses = []string{StatusPending, StatusSettled, StatusFailed}

// SettlementHistory is a provider's durable settlement history in its
// node database.
type SettlementHistory struct {
	db *storage.DB
}

// NewSettlementHistory opens the history in db.
func NewSettlementHistory(ctx context.Context, db *storage.DB) (*SettlementHistory, error) {
	if err := db.Update(ctx, func(tx *storage.Tx) error {
		if err := tx.CreateBuckets(settlementsBucket, settlementCountsBucket); err != nil {
			return err
		}
		if _, ok, err := tx.Get(settlementCountsBucket, countsReady); err != nil || ok {
			return err
		}
		return recount(tx)
	}); err != nil {
		return nil, fmt.Errorf("node: settlement history: %w", err)
	}
	return &SettlementHistory{db: db}, nil
}

// recount sets the status counts from the records (once per database).
func recount(tx *storage.Tx) error {
	by := map[string]int64{}
	if err := tx.ForEach(settlementsBucket, func(_, v []byte) error {
		var r SettlementRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("node: settlement record: %w", err)
		}
		by[r.Status]++
		return nil
	}); err != nil {
		return err
	}
	for _, st := range settlementStatuses {
		if err := tx.Put(settlementCountsBucket, []byte(st), binary.BigEndian.AppendUint64(nil, uint64(by[st]))); err != nil {
			return err
		}
	}
	return tx.Put(settlementCountsBucket, countsReady, []byte{1})
}

// addCount adds delta to the count of status (floored at zero).
func addCount(tx *storage.Tx, status string, delta int64) error {
	if status != StatusPending && status != StatusSettled && status != StatusFailed {
		return nil // not a status a record is written with
	}
	v, _, err := tx.Get(settlementCountsBucket, []byte(status))
	if err != nil {
		return err
	}
	var n int64
	if len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n = max(0, n+delta)
	return tx.Put(settlementCountsBucket, []byte(status), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// StatusCounts returns how many records of the history have each status
// (StatusPending, StatusSettled, StatusFailed; zero included). It reads
// the counts kept on every write, not the records: its cost does not grow
// with the history.
func (h *SettlementHistory) StatusCounts(ctx context.Context) (map[string]uint64, error) {
	out := make(map[string]uint64, len(settlementStatuses))
	err := h.db.View(ctx, func(tx *storage.Tx) error {
		for _, st := range settlementStatuses {
			v, _, err := tx.Get(settlementCountsBucket, []byte(st))
			if err != nil {
				return err
			}
			out[st] = 0
			if len(v) == 8 {
				out[st] = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node: settlement counts: %w", err)
	}
	return out, nil
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// begin records a pending attempt (durably, before the transaction is
// sent) and returns it with its ID and Attempt set.
func (h *SettlementHistory) begin(ctx context.Context, r SettlementRecord) (SettlementRecord, error) {
	err := h.db.Update(ctx, func(tx *storage.Tx) error {
		r.Attempt = 1
		var ids [][]byte
		var statuses []string
		if err := tx.ForEach(settlementsBucket, func(k, v []byte) error {
			ids = append(ids, append([]byte(nil), k...))
			var old SettlementRecord
			_ = json.Unmarshal(v, &old)
			statuses = append(statuses, old.Status)
			if old.Amount == r.Amount && old.Status != StatusSettled {
				r.Attempt++
			}
			return nil
		}); err != nil {
			return err
		}
		for i := 0; len(ids)-i >= maxHistory; i++ {
			if err := tx.Delete(settlementsBucket, ids[i]); err != nil {
				return err
			}
			if err := addCount(tx, statuses[i], -1); err != nil {
				return err
			}
		}
		id, err := tx.NextSequence(settlementsBucket)
		if err != nil {
			return err
		}
		r.ID, r.Status = id, StatusPending
		if err := addCount(tx, StatusPending, 1); err != nil {
			return err
		}
		return putRecord(tx, r)
	})
	return r, err
}

func putRecord(tx *storage.Tx, r SettlementRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("node: encode settlement record: %w", err)
	}
	return tx.Put(settlementsBucket, idKey(r.ID), b)
}

// finish records the outcome of attempt r.
func (h *SettlementHistory) finish(ctx context.Context, r SettlementRecord, s Settlement, serr error) error {
	if serr != nil {
		r.Status, r.Error = StatusFailed, serr.Error()
	} else {
		r.Status, r.Tx = StatusSettled, s.Tx.Hex()
	}
	return h.db.Update(ctx, func(tx *storage.Tx) error {
		// Move the count from the stored record's status (if the record
		// is still kept) to the new one.
		if v, ok, err := tx.Get(settlementsBucket, idKey(r.ID)); err != nil {
			return err
		} else if ok {
			var old SettlementRecord
			if json.Unmarshal(v, &old) == nil {
				if err := addCount(tx, old.Status, -1); err != nil {
					return err
				}
			}
		}
		if err := addCount(tx, r.Status, 1); err != nil {
			return err
		}
		return putRecord(tx, r)
	})
}

// List returns up to limit records, newest first (limit <= 0: all).
func (h *SettlementHistory) List(ctx context.Context, limit int) ([]SettlementRecord, error) {
	var out []SettlementRecord
	err := h.db.View(ctx, func(tx *storage.Tx) error {
		return tx.ForEach(settlementsBucket, func(_, v []byte) error {
			var r SettlementRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("node: settlement record: %w", err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// SettleRecorded settles like Settle and records the attempt in h (when
// not nil): a pending record before the transaction, then its outcome.
func (p *Settler) SettleRecorded(ctx context.Context, h *SettlementHistory, trigger string) (Settlement, error) {
	if h == nil {
		return p.Settle(ctx)
	}
	q, err := p.Quote(ctx)
	if err != nil {
		return Settlement{}, err
	}
	if q.Unsettled.Sign() <= 0 {
		return Settlement{}, ErrNothingToSettle
	}
	return p.settleQuoted(ctx, h, trigger, q)
}

func (p *Settler) settleQuoted(ctx context.Context, h *SettlementHistory, trigger string, q SettleQuote) (Settlement, error) {
	rec, err := h.begin(ctx, SettlementRecord{
		Time: time.Now().UTC(), Trigger: trigger, Amount: q.Amount.String(), Unsettled: q.Unsettled.String(),
		HermesFee: q.HermesFee.String(), TransactorFee: q.TransactorFee.String(), Beneficiary: q.Beneficiary.Hex(),
	})
	if err != nil {
		return Settlement{}, err
	}
	s, serr := p.Settle(ctx)
	// Record the outcome even when ctx ended (shutdown).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := h.finish(fctx, rec, s, serr); err != nil {
		return s, errors.Join(serr, err)
	}
	return s, serr
}

// AutoSettleOnce checks the earnings against pol and settles when it
// says so, recording the attempt. It returns whether it settled and, when
// it did not, why.
func (p *Settler) AutoSettleOnce(ctx context.Context, h *SettlementHistory, pol SettlePolicy, trigger string) (bool, string, error) {
	q, err := p.Quote(ctx)
	if err != nil {
		return false, "", err
	}
	if ok, why := pol.Decide(q); !ok {
		return false, why, nil
	}
	if _, err := p.settleQuoted(ctx, h, trigger, q); err != nil {
		return false, "", err
	}
	return true, "", nil
}

// runAutoSettle checks every pol.Interval until ctx ends.
func runAutoSettle(ctx context.Context, s *Settler, h *SettlementHistory, pol SettlePolicy, log *slog.Logger) {
	tick.Every(ctx, pol.Interval, func(ctx context.Context) {
		settled, why, err := s.AutoSettleOnce(ctx, h, pol, TriggerAuto)
		switch {
		case err != nil:
			log.Warn("node: auto-settlement failed; retrying next interval", "err", err, "interval", pol.Interval)
		case settled:
			log.Info("node: auto-settled provider earnings")
		default:
			log.Debug("node: no auto-settlement", "reason", why)
		}
	})
}

// DTO is the record as Tequilapi serves it.
func (r SettlementRecord) DTO() tequilapi.SettlementDTO {
	return tequilapi.SettlementDTO{
		ID: r.ID, Time: r.Time.Format(time.RFC3339), Trigger: r.Trigger, Status: r.Status, Attempt: r.Attempt, Tx: r.Tx,
		Amount: r.Amount, Unsettled: r.Unsettled, HermesFee: r.HermesFee, TransactorFee: r.TransactorFee,
		Beneficiary: r.Beneficiary, Error: r.Error,
	}
}

// Settlements implements tequilapi.SettlementHistory.
func (h *SettlementHistory) Settlements(ctx context.Context, limit int) ([]tequilapi.SettlementDTO, error) {
	list, err := h.List(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]tequilapi.SettlementDTO, len(list))
	for i, r := range list {
		out[i] = r.DTO()
	}
	return out, nil
}

// Settlements implements tequilapi.SettlementHistory (503
// provider_starting until the provider runs).
func (s *ProviderService) Settlements(ctx context.Context, limit int) ([]tequilapi.SettlementDTO, error) {
	p := s.Provider()
	if p == nil {
		_, err := s.api()
		return nil, err
	}
	return p.Settlements.Settlements(ctx, limit)
}

// SettleOptions are a provider's --settle.* flag values.
type SettleOptions struct {
	// Auto, Threshold (MYST), MaxFeeShare (0-1), Interval and AtShutdown
	// describe the SettlePolicy; Auto false means none.
	Auto, AtShutdown bool
	Threshold        string
	MaxFeeShare      float64
	Interval         time.Duration
}

// Register declares a provider's --settle.* flags on fs.
func (o *SettleOptions) Register(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Auto, "settle.auto", true, "settle the hermes earnings on chain automatically (see --settle.threshold, --settle.max-fee-share)")
	fs.StringVar(&o.Threshold, "settle.threshold", money.FormatMYST(DefaultSettleThreshold), "settle automatically once this much MYST is unsettled")
	fs.Float64Var(&o.MaxFeeShare, "settle.max-fee-share", float64(DefaultMaxFeeShareBps)/10000, "settle automatically only while the fees (hermes + transactor) are at most this share of the amount (0-1)")
	fs.DurationVar(&o.Interval, "settle.interval", DefaultSettleInterval, "how often to check the earnings for automatic settlement")
	fs.BoolVar(&o.AtShutdown, "settle.at-shutdown", true, "also check (and settle) when the provider stops")
}

// Policy is the policy o describes (nil when Auto is off).
func (o SettleOptions) Policy() (*SettlePolicy, error) {
	if !o.Auto {
		return nil, nil
	}
	thr, err := money.ParseMYST(o.Threshold)
	if err != nil {
		return nil, fmt.Errorf("--settle.threshold: %w", err)
	}
	if math.IsNaN(o.MaxFeeShare) || o.MaxFeeShare < 0 || o.MaxFeeShare > 1 {
		return nil, fmt.Errorf("--settle.max-fee-share %v: want a share between 0 and 1", o.MaxFeeShare)
	}
	p := &SettlePolicy{Threshold: thr, MaxFeeShareBps: uint16(math.Round(o.MaxFeeShare * 10000)), Interval: o.Interval, AtShutdown: o.AtShutdown}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("--settle.*: %w", err)
	}
	return p, nil
}

// StoredSettlements lists the settlement history in the provider
// database under dir (<data-dir>/provider) while no provider runs there.
func StoredSettlements(ctx context.Context, dir string, limit int) ([]tequilapi.SettlementDTO, error) {
	db, err := storage.Open(filepath.Join(dir, storage.FileName), storage.WithLockTimeout(time.Second))
	if err != nil {
		return nil, fmt.Errorf("provider database (no running service answered): %w", err)
	}
	defer db.Close()
	h, err := NewSettlementHistory(ctx, db)
	if err != nil {
		return nil, err
	}
	return h.Settlements(ctx, limit)
}

// WriteSettlements prints list as a table (amounts in MYST, or wei).
func WriteSettlements(w io.Writer, list []tequilapi.SettlementDTO, wei bool) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no settlements yet")
		return err
	}
	amount := func(s string) string {
		if v, ok := new(big.Int).SetString(s, 10); ok && !wei {
			return money.FormatMYST(v)
		}
		return s
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTRIGGER\tSTATUS\tTRY\tAMOUNT\tFEES (HERMES+TX)\tBENEFICIARY\tTX / ERROR")
	for _, s := range list {
		detail := s.Tx
		if s.Error != "" {
			detail = s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s+%s\t%s\t%s\n", s.Time, s.Trigger, s.Status, s.Attempt, amount(s.Unsettled),
			amount(s.HermesFee), amount(s.TransactorFee), s.Beneficiary, detail)
	}
	return tw.Flush()
}
