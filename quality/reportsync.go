package quality

import (
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/openmyst/openmyst/p2p"
)

// ReportSyncProtocol is the stream protocol a node uses to pull the recent
// reports a peer counted (the newest at most MaxSyncReports and
// MaxSyncBytes, none older than MaxSyncAge), so a node that joins after
// the gossip window still scores with them. Each pulled report goes
// through the gossip validator, with MaxSyncAge for its age.
const ReportSyncProtocol protocol.ID = "/openmyst/quality/reports/sync/1.0.0"

// MaxSyncReports bounds the reports a node keeps to serve, and takes from
// one peer, per pull.
const MaxSyncReports = 1024

// MaxSyncBytes bounds the encoded reports a node serves, and takes from
// one peer, per pull (about 850 reports with payment evidence).
const MaxSyncBytes = 1 << 20

// recentReport is a counted report kept for ReportSyncProtocol.
type recentReport struct {
	raw      []byte
	issuedAt int64
}

// remember keeps raw (a counted report) for serving, dropping the oldest
// past MaxSyncReports.
func (q *reports) remember(raw []byte, issuedAt int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.recent) >= MaxSyncReports {
		q.recent = append(q.recent[:0], q.recent[1:]...)
	}
	q.recent = append(q.recent, recentReport{raw: raw, issuedAt: issuedAt})
}

// fresh returns the newest kept reports not older than MaxSyncAge that
// fit in MaxSyncBytes, oldest first.
func (q *reports) fresh(now time.Time) [][]byte {
	cut := now.Add(-MaxSyncAge).Unix()
	q.mu.Lock()
	defer q.mu.Unlock()
	first, size := len(q.recent), 0
	for i := len(q.recent) - 1; i >= 0; i-- {
		r := q.recent[i]
		if r.issuedAt < cut || size+len(r.raw) > MaxSyncBytes {
			break
		}
		size += len(r.raw)
		first = i
	}
	out := make([][]byte, 0, len(q.recent)-first)
	for _, r := range q.recent[first:] {
		out = append(out, r.raw)
	}
	return out
}

func (s *Service) serveReports(st network.Stream) {
	defer st.Close()
	if !s.rep.serve.Allow(st.Conn().RemotePeer(), time.Now()) {
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(syncTimeout))
	_ = p2p.WriteFrames(st, s.rep.fresh(s.rep.now()))
}

// SyncReportsFrom pulls the recent reports p counted and counts the ones
// this node's validator accepts (freshness up to MaxSyncAge, replay,
// per-identity rate, backing: as from gossip; the per-peer message rate
// is replaced by the pull's own limit). It returns how many were counted.
// A peer that sends anything malformed, badly signed or from the future,
// or more than MaxSyncReports or MaxSyncBytes, is cut off at once.
func (s *Service) SyncReportsFrom(ctx context.Context, p peer.ID) (int, error) {
	if s.rep == nil {
		return 0, errors.New("quality: reports are not enabled")
	}
	counted, size := 0, 0
	err := s.pullFrames(ctx, p, ReportSyncProtocol, MaxSyncReports, MaxReportSize, func(ctx context.Context, raw []byte) error {
		if size += len(raw); size > MaxSyncBytes {
			return fmt.Errorf("%w: more than %d bytes of reports", errBadPeer, MaxSyncBytes)
		}
		c, res := s.rep.check(ctx, "", s.cfg.ChainID, raw, MaxSyncAge)
		switch res {
		case pubsub.ValidationReject:
			return fmt.Errorf("%w: invalid report", errBadPeer)
		case pubsub.ValidationAccept:
			if s.rep.count(c, raw) {
				counted++
			}
		}
		return nil
	})
	if err != nil {
		return counted, fmt.Errorf("quality: report sync with %s: %w", p, err)
	}
	return counted, nil
}

// errBadPeer marks a sync the serving peer spoiled (an item over the
// limits or invalid): the stream is reset and the peer's answer dropped.
var errBadPeer = errors.New("bad sync item")
