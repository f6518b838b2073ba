package chain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/internal/defaults"
)

// LogSource is what a LogWatcher reads; ethclient.Client, the simulated
// backend's client and every Backend satisfy it.
type LogSource interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

// Defaults of WatcherConfig.
const (
	// DefaultWatchPoll is how often a watcher looks for new blocks.
	DefaultWatchPoll = 2 * time.Second
	// DefaultMaxLogRange is the largest eth_getLogs block range a watcher asks for.
	DefaultMaxLogRange = 2000
	// DefaultReorgWindow is how many blocks back a watcher can undo a reorg.
	DefaultReorgWindow = 128
	// maxWindowLogs bounds the delivered logs a watcher keeps for undoing.
	maxWindowLogs = 10_000
)

// ErrReorgTooDeep is returned (wrapped) when a reorg replaced every block in
// a watcher's reorg window: it cannot tell which delivered logs are void.
var ErrReorgTooDeep = errors.New("chain: reorg deeper than the watcher's reorg window")

// WatcherConfig configures a LogWatcher.
type WatcherConfig struct {
	// Name keys the watcher's position in Store.
	Name string
	// Queries select the logs (addresses and topics; the watcher sets the
	// block range). Logs of all queries are delivered merged, in chain order.
	Queries []ethereum.FilterQuery
	// Confirmations is how many blocks must be on top of a block before its
	// logs are delivered (0: at the head).
	Confirmations uint64
	// Poll is how often Run looks for new blocks (DefaultWatchPoll if zero).
	Poll time.Duration
	// MaxRange is the largest eth_getLogs range (DefaultMaxLogRange if
	// zero). Ranges are halved while the endpoint refuses them as too large
	// or returning too many results, down to one block.
	MaxRange uint64
	// ReorgWindow is how many delivered blocks are remembered to undo a
	// reorg (DefaultReorgWindow if zero); keep it above Confirmations.
	ReorgWindow uint64
	// Start is the first block to deliver when Store has no position (nil:
	// the first confirmed block after the head at the first poll).
	Start *uint64
	// Store keeps the position across restarts (nil: in memory only).
	Store WatchStore
}

// LogWatcher delivers the logs matching its queries once they have
// Confirmations blocks on top, exactly once per canonical block, across
// restarts (with a Store). When a reorg drops blocks it already delivered,
// their logs are delivered again with Removed set before the logs of the
// new branch. eth_getLogs ranges are split when the endpoint refuses them.
type LogWatcher struct {
	src LogSource
	cfg WatcherConfig
	log *slog.Logger

	st     WatchState
	loaded bool
	span   uint64 // current eth_getLogs range
	good   int    // full-span successes since the last shrink
}

// NewLogWatcher returns a watcher of src.
func NewLogWatcher(src LogSource, cfg WatcherConfig, log *slog.Logger) *LogWatcher {
	cfg.Poll = defaults.Positive(cfg.Poll, DefaultWatchPoll)
	cfg.MaxRange = cmp.Or(cfg.MaxRange, DefaultMaxLogRange)
	cfg.ReorgWindow = cmp.Or(cfg.ReorgWindow, DefaultReorgWindow)
	log = cmp.Or(log, slog.Default())
	return &LogWatcher{src: src, cfg: cfg, log: log.With("watcher", cfg.Name), span: cfg.MaxRange}
}

// Handler receives logs in chain order. Removed logs are ones delivered
// before whose block a reorg dropped. If it returns an error the watcher
// does not move past them and delivers them again later.
type Handler func(ctx context.Context, logs []types.Log) error

// Run polls every Poll until ctx is done, delivering logs to h. Poll errors
// are logged and retried at the next tick.
func (w *LogWatcher) Run(ctx context.Context, h Handler) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		if err := w.Poll(ctx, h); err != nil && ctx.Err() == nil {
			w.log.Warn("chain: watch logs", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Next is the first block whose logs have not been delivered (0 before the
// first poll).
func (w *LogWatcher) Next() uint64 { return w.st.Next }

// Poll delivers everything confirmed since the last call: it undoes a
// reorg if one happened, then walks the new confirmed blocks in ranges.
func (w *LogWatcher) Poll(ctx context.Context, h Handler) error {
	head, err := w.src.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("chain: read head: %w", err)
	}
	if err := w.load(ctx, head.Number.Uint64()); err != nil {
		return err
	}
	if err := w.checkReorg(ctx, h); err != nil {
		return err
	}
	if head.Number.Uint64() < w.cfg.Confirmations {
		return nil
	}
	target := head.Number.Uint64() - w.cfg.Confirmations
	for w.st.Next <= target {
		if err := ctx.Err(); err != nil {
			return err
		}
		from := w.st.Next
		to := min(target, from+w.span-1)
		if err := w.deliver(ctx, from, to, h); err != nil {
			return err
		}
	}
	return nil
}

func (w *LogWatcher) load(ctx context.Context, head uint64) error {
	if w.loaded {
		return nil
	}
	if w.cfg.Store != nil {
		st, ok, err := w.cfg.Store.LoadWatch(ctx, w.cfg.Name)
		if err != nil {
			return err
		}
		if ok {
			w.st, w.loaded = st, true
			w.log.Info("chain: watcher resumes", "next_block", st.Next)
			return nil
		}
	}
	switch {
	case w.cfg.Start != nil:
		w.st.Next = *w.cfg.Start
	case head >= w.cfg.Confirmations:
		w.st.Next = head - w.cfg.Confirmations + 1
	}
	// Record the start at once: a restart must not skip what came since.
	if err := w.save(ctx, w.st); err != nil {
		return err
	}
	w.loaded = true
	return nil
}

// header returns the canonical hash of block n.
func (w *LogWatcher) header(ctx context.Context, n uint64) (*types.Header, error) {
	hd, err := w.src.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
	if err != nil {
		return nil, fmt.Errorf("chain: read block %d: %w", n, err)
	}
	return hd, nil
}

// checkReorg compares the newest remembered block with the chain; if it
// changed, it finds the newest remembered block still canonical, delivers
// the logs after it as removed and rewinds to the block after it.
func (w *LogWatcher) checkReorg(ctx context.Context, h Handler) error {
	n := len(w.st.Recent)
	if n == 0 {
		return nil
	}
	last := w.st.Recent[n-1]
	hd, err := w.src.HeaderByNumber(ctx, new(big.Int).SetUint64(last.Number))
	if err != nil && !errors.Is(err, ethereum.NotFound) {
		return fmt.Errorf("chain: read block %d: %w", last.Number, err)
	}
	if err == nil && hd.Hash() == last.Hash {
		return nil
	}
	// Walk back to the newest remembered block that is still canonical.
	keep := -1
	for i := n - 2; i >= 0; i-- {
		hd, err := w.src.HeaderByNumber(ctx, new(big.Int).SetUint64(w.st.Recent[i].Number))
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			return fmt.Errorf("chain: read block %d: %w", w.st.Recent[i].Number, err)
		}
		if err == nil && hd.Hash() == w.st.Recent[i].Hash {
			keep = i
			break
		}
	}
	var fork uint64 // first block that may have changed
	if keep >= 0 {
		fork = w.st.Recent[keep].Number + 1
	} else {
		fork = w.st.Recent[0].Number
		w.log.Error("chain: reorg replaced every remembered block; undoing the whole window", "from", fork, "err", ErrReorgTooDeep)
	}
	var removed, kept []types.Log
	for _, l := range w.st.Logs {
		if l.BlockNumber >= fork {
			l.Removed = true
			removed = append(removed, l)
		} else {
			kept = append(kept, l)
		}
	}
	slices.Reverse(removed)
	w.log.Warn("chain: reorg", "dropped_from_block", fork, "removed_logs", len(removed))
	if len(removed) > 0 {
		if err := h(ctx, removed); err != nil {
			return fmt.Errorf("chain: deliver removed logs: %w", err)
		}
	}
	next := WatchState{Next: fork, Recent: slices.Clone(w.st.Recent[:keep+1]), Logs: kept}
	// The handler has run: record that even if ctx ends now.
	if err := w.save(context.WithoutCancel(ctx), next); err != nil {
		return err
	}
	if keep < 0 {
		return fmt.Errorf("chain: watcher %q at block %d: %w", w.cfg.Name, fork, ErrReorgTooDeep)
	}
	return nil
}

// deliver reads and hands over the logs of [from, to], then records the
// new position. A reorg while reading shows as a changed hash of block
// to and is retried at the next poll.
func (w *LogWatcher) deliver(ctx context.Context, from, to uint64, h Handler) error {
	before, err := w.header(ctx, to)
	if err != nil {
		return err
	}
	logs, err := w.getLogs(ctx, from, to, 0)
	if err != nil {
		return err
	}
	after, err := w.header(ctx, to)
	if err != nil {
		return err
	}
	if after.Hash() != before.Hash() {
		return fmt.Errorf("chain: block %d changed while reading logs (reorg); retrying", to)
	}
	recent := slices.Clone(w.st.Recent)
	for _, l := range logs {
		if l.BlockNumber < from || l.BlockNumber > to {
			return fmt.Errorf("chain: endpoint returned a log of block %d for range %d-%d", l.BlockNumber, from, to)
		}
		if l.BlockNumber == to && l.BlockHash != before.Hash() {
			return fmt.Errorf("chain: log of block %d has hash %s, block is %s (reorg); retrying", to, l.BlockHash.Hex(), before.Hash().Hex())
		}
		if k := len(recent); k == 0 || recent[k-1].Number != l.BlockNumber {
			recent = append(recent, BlockRef{Number: l.BlockNumber, Hash: l.BlockHash})
		}
	}
	if k := len(recent); k == 0 || recent[k-1].Number != to {
		recent = append(recent, BlockRef{Number: to, Hash: before.Hash()})
	}
	if len(logs) > 0 {
		if err := h(ctx, logs); err != nil {
			return fmt.Errorf("chain: handle logs of blocks %d-%d: %w", from, to, err)
		}
	}
	next := WatchState{Next: to + 1, Recent: recent, Logs: append(slices.Clone(w.st.Logs), logs...)}
	w.prune(&next)
	// The handler has run: record that even if ctx ends now, or a
	// restart delivers the range again.
	return w.save(context.WithoutCancel(ctx), next)
}

// prune forgets blocks and logs older than the reorg window.
func (w *LogWatcher) prune(st *WatchState) {
	if st.Next > w.cfg.ReorgWindow {
		oldest := st.Next - w.cfg.ReorgWindow
		i := 0
		for i < len(st.Recent)-1 && st.Recent[i].Number < oldest {
			i++
		}
		st.Recent = st.Recent[i:]
		j := 0
		for j < len(st.Logs) && st.Logs[j].BlockNumber < oldest {
			j++
		}
		st.Logs = st.Logs[j:]
	}
	if over := len(st.Logs) - maxWindowLogs; over > 0 {
		st.Logs = st.Logs[over:]
	}
}

func (w *LogWatcher) save(ctx context.Context, st WatchState) error {
	if w.cfg.Store != nil {
		if err := w.cfg.Store.SaveWatch(ctx, w.cfg.Name, st); err != nil {
			return err
		}
	}
	w.st = st
	return nil
}

// getLogs runs every query over [from, to] and merges the results in chain
// order. A range the endpoint refuses as too large is bisected (and later
// ranges start at the smaller size); a single block that is still refused
// is an error.
func (w *LogWatcher) getLogs(ctx context.Context, from, to uint64, depth int) ([]types.Log, error) {
	var all []types.Log
	for _, q := range w.cfg.Queries {
		q.FromBlock, q.ToBlock = new(big.Int).SetUint64(from), new(big.Int).SetUint64(to)
		q.BlockHash = nil
		logs, err := w.src.FilterLogs(ctx, q)
		if err != nil {
			if !IsLogRangeError(err) {
				return nil, fmt.Errorf("chain: eth_getLogs %d-%d: %w", from, to, err)
			}
			if from == to {
				return nil, fmt.Errorf("chain: eth_getLogs refuses even the single block %d: %w", from, err)
			}
			mid := from + (to-from)/2
			if n := mid - from + 1; n < w.span {
				w.span, w.good = n, 0
				w.log.Info("chain: eth_getLogs range refused; splitting", "from", from, "to", to, "new_range", n, "err", err)
			}
			a, err := w.getLogs(ctx, from, mid, depth+1)
			if err != nil {
				return nil, err
			}
			b, err := w.getLogs(ctx, mid+1, to, depth+1)
			if err != nil {
				return nil, err
			}
			return append(a, b...), nil
		}
		all = append(all, logs...)
	}
	if depth == 0 && to-from+1 == w.span && w.span < w.cfg.MaxRange {
		// The endpoint took a full range: after a while try larger ones again.
		if w.good++; w.good >= 16 {
			w.span, w.good = min(w.span*2, w.cfg.MaxRange), 0
		}
	}
	if len(w.cfg.Queries) > 1 {
		slices.SortStableFunc(all, func(a, b types.Log) int {
			if a.BlockNumber != b.BlockNumber {
				return cmpU64(a.BlockNumber, b.BlockNumber)
			}
			return cmpU64(uint64(a.Index), uint64(b.Index))
		})
		all = slices.CompactFunc(all, func(a, b types.Log) bool { return a.BlockHash == b.BlockHash && a.Index == b.Index })
	}
	return all, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// logRangeErrors are substrings of the errors JSON-RPC endpoints return
// when an eth_getLogs range or its result is too large (lower case).
var logRangeErrors = []string{
	"query returned more than",         // Infura, geth-style: "query returned more than 10000 results"
	"exceed maximum block range",       // go-ethereum --rpc.rangelimit: "exceed maximum block range 5000"
	"block range is too wide",          // Ankr, others
	"block range too large",            // various
	"block range limit exceeded",       // Chainstack
	"range too large",                  // "eth_getLogs range too large"
	"range is too large",               // Nethermind-style
	"too many results",                 // various
	"response size exceeded",           // Alchemy: "Log response size exceeded."
	"is limited to a",                  // QuickNode: "eth_getLogs is limited to a 10,000 range"
	"exceeds max results",              // Erigon-style
	"query timeout exceeded",           // Nethermind/Besu on heavy ranges
	"you can make eth_getlogs request", // Alchemy hint text
}

// IsLogRangeError reports whether err is an eth_getLogs refusal that a
// smaller block range avoids.
func IsLogRangeError(err error) bool {
	if err == nil {
		return false
	}
	s := strings.ToLower(err.Error())
	if strings.Contains(s, "beyond current head") { // a lagging node: retry, do not split
		return false
	}
	for _, m := range logRangeErrors {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
