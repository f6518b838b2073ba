package discovery

import (
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	n := startNode(t, t.Context(), nil, netOpts{})
	defer n.close()
	s := keytest.Signer(t)
	good := signedBy(t, s, n.node.ID(), time.Now(), nil)
	if _, r, _ := n.svc.Validator().Check([]byte("junk"), n.node.ID()); r != ReasonMalformed {
		t.Fatalf("junk: %s", r)
	}
	a, r, err := n.svc.Validator().Check(good, n.node.ID())
	if r != ReasonAccepted {
		t.Fatalf("good: %s %v", r, err)
	}
	n.svc.Cache().Put(a, good)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(n.svc.Collector()); err != nil {
		t.Fatal(err)
	}
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	gauge := false
	for _, f := range mf {
		if f.GetName() == "openmyst_discovery_proposals" {
			gauge = true
			if v := f.GetMetric()[0].GetGauge().GetValue(); v != 1 {
				t.Fatalf("proposals gauge %v, want 1", v)
			}
		}
		if f.GetName() != "openmyst_discovery_messages_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if !gauge {
		t.Fatal("no openmyst_discovery_proposals gauge")
	}
	if got["accepted"] != 1 || got["malformed"] != 1 || got["signature"] != 0 || len(got) != int(numReasons) {
		t.Fatalf("messages_total = %v", got)
	}
}
