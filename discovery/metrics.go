package discovery

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	messagesDesc = prometheus.NewDesc("openmyst_discovery_messages_total",
		"Proposal announcements validated, by outcome (accepted, stale, rate_limited, or a rejection reason).",
		[]string{"outcome"}, nil)
	proposalsDesc = prometheus.NewDesc("openmyst_discovery_proposals",
		"Live proposals in the node's cache.", nil, nil)
	topicPeersDesc = prometheus.NewDesc("openmyst_discovery_topic_peers",
		"Connected peers subscribed to the proposal topic.", nil, nil)
)

// collector exports a Service's counters to Prometheus.
type collector struct{ s *Service }

// Collector returns a Prometheus collector for the service's validation
// counters, cache size and topic peers; register it with the node's
// registry.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- messagesDesc
	ch <- proposalsDesc
	ch <- topicPeersDesc
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for r := Reason(0); r < numReasons; r++ {
		ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.CounterValue, float64(c.s.val.Count(r)), r.String())
	}
	ch <- prometheus.MustNewConstMetric(proposalsDesc, prometheus.GaugeValue, float64(c.s.cache.Len()))
	ch <- prometheus.MustNewConstMetric(topicPeersDesc, prometheus.GaugeValue, float64(len(c.s.topic.ListPeers())))
}
