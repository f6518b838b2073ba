package node

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/tequilapi"
)

// TestSessionsEndedMetric: GET /metrics counts ended provider and
// consumer sessions by the code they ended with, every reason present
// (zero included), and a code the peer made up counted as "other", never
// as a label of its own.
func TestSessionsEndedMetric(t *testing.T) {
	n := &DaemonNode{Log: slog.New(slog.DiscardHandler)}
	m := newNodeMetrics(n, nil, &ConnectionAPI{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	for _, err := range []error{
		fmt.Errorf("%w: used up until 2027-01-01", paystream.ErrQuotaExhausted), // sent quota_exhausted
		fmt.Errorf("%w: used up until 2027-01-01", paystream.ErrQuotaExhausted),
		&sessionproto.Error{Code: sessionproto.CodeOvercharge, Message: "invoice asks too much"}, // the consumer's refusal
		fmt.Errorf("%w: stream closed", paystream.ErrPeerEnded),
		nil, // the manager closed
		&sessionproto.Error{Code: "made-up code from the peer"},
	} {
		m.ended(provider.Ended{Err: err})
	}
	// The daemon's consumer: a refused connect is no session; a session
	// the provider ended for its quota, one the path lost, a disconnect.
	c := &Consumer{cfg: ConsumerConfig{ends: &n.consumerEnds}}
	report := c.onResult(nil)
	report(consumer.Result{Stage: consumer.StageRequest, Err: &sessionproto.Error{Code: sessionproto.CodeCapacity}})
	report(consumer.Result{Stage: consumer.StageSession, Err: fmt.Errorf("consumer: %w", &sessionproto.Error{Code: sessionproto.CodeQuotaExhausted})})
	report(consumer.Result{Stage: consumer.StageSession, Err: fmt.Errorf("%w: the tunnel sent and received nothing for 30s", session.ErrPathLost)})
	report(consumer.Result{Stage: consumer.StageSession})
	rec := httptest.NewRecorder()
	tequilapi.MetricsRoutes(reg, nil)[0].Handler(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, body)
	}
	for _, want := range []string{
		"# TYPE openmyst_provider_sessions_ended_total counter",
		`openmyst_provider_sessions_ended_total{reason="quota_exhausted"} 2`,
		`openmyst_provider_sessions_ended_total{reason="overcharge"} 1`,
		`openmyst_provider_sessions_ended_total{reason="normal"} 2`,
		`openmyst_provider_sessions_ended_total{reason="other"} 1`,
		`openmyst_provider_sessions_ended_total{reason="read_timeout"} 0`,
		`openmyst_provider_sessions_ended_total{reason="path_lost"} 0`,
		"openmyst_provider_sessions_total 6",
		`openmyst_consumer_sessions_ended_total{reason="quota_exhausted"} 1`,
		`openmyst_consumer_sessions_ended_total{reason="path_lost"} 1`,
		`openmyst_consumer_sessions_ended_total{reason="normal"} 1`,
		`openmyst_consumer_sessions_ended_total{reason="capacity"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
	for _, name := range []string{"openmyst_provider_sessions_ended_total{", "openmyst_consumer_sessions_ended_total{"} {
		if n := strings.Count(body, name); n != len(paystream.EndReasons()) {
			t.Errorf("%d %s series, want one per reason (%d)", n, name, len(paystream.EndReasons()))
		}
	}
	if t.Failed() {
		t.Logf("GET /metrics:\n%s", body)
	}
}
