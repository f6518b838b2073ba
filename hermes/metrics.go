package hermes

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hermes's Prometheus instruments.
type Metrics struct {
	// Accepted counts accepted exchange messages (replays excluded).
	Accepted prometheus.Counter
	// Replayed counts identical messages answered from the store.
	Replayed prometheus.Counter
	// Rejected counts rejected exchange messages by reason (Code).
	Rejected *prometheus.CounterVec
	// Latency is the exchange handling time, acceptance or rejection.
	Latency prometheus.Histogram
	// BatchSize is the number of accepts per group commit.
	BatchSize prometheus.Histogram
	// Reveals counts revealed secrets.
	Reveals prometheus.Counter
	// Settlements counts consumer settlements by result (ok, error).
	Settlements *prometheus.CounterVec
	// RateLimited counts requests refused with rate_limited, by scope
	// (source, identity).
	RateLimited *prometheus.CounterVec
	// ChainReads counts consumer channel reads from the chain (cache
	// misses).
	ChainReads prometheus.Counter
}

// NewMetrics creates the instruments and registers them with reg (which
// may be nil for unregistered instruments).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "hermes_exchange_accepted_total", Help: "Exchange messages accepted."}),
		Replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "hermes_exchange_replayed_total", Help: "Identical exchange messages answered with the stored promise."}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hermes_exchange_rejected_total", Help: "Exchange messages rejected, by reason."}, []string{"reason"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hermes_exchange_seconds", Help: "Exchange message handling time.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14)}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hermes_commit_batch_size", Help: "Accepted messages per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		Reveals:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hermes_reveals_total", Help: "Secrets R revealed by providers."}),
		Settlements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hermes_settlements_total", Help: "Consumer promise settlements on chain, by result."}, []string{"result"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hermes_rate_limited_total", Help: "Requests refused for a source address or consumer identity over its rate, by scope."}, []string{"scope"}),
		ChainReads:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hermes_chain_channel_reads_total", Help: "Consumer channel reads from the chain (cache misses)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Accepted, m.Replayed, m.Rejected, m.Latency, m.BatchSize, m.Reveals, m.Settlements, m.RateLimited, m.ChainReads)
	}
	return m
}
