package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// NftCounters returns the packet counters of the commented rules of the
// nftables table family/table in n, summed by comment (a leak test's
// counters).
func (n *NS) NftCounters(ctx context.Context, family, table string) (map[string]uint64, error) {
	out, err := n.Run(ctx, "nft", "-j", "list", "table", family, table)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Comment string                       `json:"comment"`
				Expr    []map[string]json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("netns: nft counters of %s %s: %w", family, table, err)
	}
	got := map[string]uint64{}
	for _, o := range doc.Nftables {
		if o.Rule == nil || o.Rule.Comment == "" {
			continue
		}
		for _, e := range o.Rule.Expr {
			if c, ok := e["counter"]; ok {
				var ctr struct {
					Packets uint64 `json:"packets"`
				}
				if err := json.Unmarshal(c, &ctr); err != nil {
					return nil, fmt.Errorf("netns: nft counters of %s %s: %w", family, table, err)
				}
				got[o.Rule.Comment] += ctr.Packets
			}
		}
	}
	return got, nil
}

// MustNftCounters is NftCounters with a 30 s limit that fails tb on an
// error or unless the table has exactly want commented counters (a leak
// test checks that its table is the one it loaded).
func (n *NS) MustNftCounters(tb testing.TB, family, table string, want int) map[string]uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := n.NftCounters(ctx, family, table)
	if err != nil {
		tb.Fatal(err)
	}
	if len(got) != want {
		tb.Fatalf("leak counters %v: want %d", got, want)
	}
	return got
}

// Probe is one try of Probes: a dial of Network ("tcp", "udp", "tcp6",
// ...) to Addr that, once connected, writes Payload (if any) and closes.
type Probe struct {
	Network, Addr string
	Payload       []byte
}

// Probes try, inside a namespace, to reach destinations a leak test
// counts, round after round until Stop.
type Probes struct {
	cancel context.CancelFunc
	done   chan struct{}
	rounds atomic.Int64
	once   sync.Once
}

// StartProbes runs every probe of list inside n (each dial bounded by
// 300 ms), waits every between rounds, and goes on until Stop.
func (n *NS) StartProbes(every time.Duration, list []Probe) *Probes {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Probes{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			_ = n.Do(func() error {
				d := net.Dialer{Timeout: 300 * time.Millisecond}
				for _, pr := range list {
					if c, err := d.DialContext(ctx, pr.Network, pr.Addr); err == nil {
						if len(pr.Payload) > 0 {
							_, _ = c.Write(pr.Payload)
						}
						_ = c.Close()
					}
				}
				return nil
			})
			p.rounds.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	}()
	return p
}

// Rounds is how many rounds of probes have run.
func (p *Probes) Rounds() int64 { return p.rounds.Load() }

// Stop ends the probes and waits for the running round. It is safe to
// call more than once.
func (p *Probes) Stop() {
	p.once.Do(func() {
		p.cancel()
		<-p.done
	})
}

// DNSQuery is a minimal DNS query (one question, type A), a Probe's
// Payload for port 53.
var DNSQuery = []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}
