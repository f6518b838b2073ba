package quality

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
)

// Benchmarks behind docs/benchmarks.md (quality):
//
//	go test -run '^$' -bench 'Report|Proof|Recover|ScoresMemory' -benchtime 2s -cpu 1 ./quality
//
// BenchmarkRecoverBaseline is one signature recovery, the baseline the
// validation costs are read against (a report with evidence needs three:
// report, exchange message, promise).

func BenchmarkRecoverBaseline(b *testing.B) {
	s := keytest.Signer(b)
	d := make([]byte, 32)
	_, _ = rand.Read(d)
	sig, err := s.Sign(d)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := identity.Recover(d, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportValidate is the validator's CPU work per report with
// evidence: strict decode and every signature (the backing lookup is a
// cached map read and not included).
func BenchmarkReportValidate(b *testing.B) {
	c, p := keytest.Signer(b), keytest.Signer(b)
	sr := report(b, c, p.Address(), time.Now(), OutcomeConnected, 5e15, 120, 1e6)
	raw, err := sr.Encode()
	if err != nil {
		b.Fatal(err)
	}
	gossip := gossipSize(b, raw, ReportTopicName(1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeReport(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw)), "report-bytes")
	b.ReportMetric(float64(gossip), "gossip-bytes")
}

// BenchmarkProofValidate is the CPU work per overcharge proof.
func BenchmarkProofValidate(b *testing.B) {
	p := overchargeProof(b, keytest.Signer(b))
	raw, err := p.Encode()
	if err != nil {
		b.Fatal(err)
	}
	gossip := gossipSize(b, raw, TopicName(1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := DecodeProof(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw)), "proof-bytes")
	b.ReportMetric(float64(gossip), "gossip-bytes")
}

// gossipSize is the size of data as one signed GossipSub message on the
// wire: the RPC protobuf (rpc.proto: RPC.publish = Message{from, data,
// seqno, topic, signature}, the ed25519 key inlined in the peer id, so no
// key field) with its varint length prefix, as sent to each mesh peer.
func gossipSize(b *testing.B, data []byte, topic string) int {
	_, id := keytest.PeerKey(b)
	field := func(n int) int { return 1 + uvarintLen(uint64(n)) + n } // tag, length, bytes
	msg := field(len(id)) + field(len(data)) + field(8) + field(len(topic)) + field(64)
	rpc := field(msg)
	return uvarintLen(uint64(rpc)) + rpc
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
