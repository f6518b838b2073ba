package p2p

import (
	"context"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// ReceiveValidated calls fn with the validator data (what the topic's
// validator attached to pubsub.Message.ValidatorData) and the message of
// every message sub delivers, until ctx ends or sub is cancelled. A
// message whose validator data is not a T is skipped. Discovery's
// announcements and quality's fraud proofs are received this way.
func ReceiveValidated[T any](ctx context.Context, sub *pubsub.Subscription, fn func(v T, msg *pubsub.Message)) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if v, ok := msg.ValidatorData.(T); ok {
			fn(v, msg)
		}
	}
}

// InvalidMessageScore is the GossipSub topic scoring of every topic whose
// messages a validator checks (discovery's proposals, quality's fraud
// proofs and reports): each invalid message a peer forwards costs it
// (count^2 * 10) points, decaying over an hour; the rest of the score is
// neutral. TimeInMeshQuantum is set only because the P1 term divides by
// it, even at weight 0.
func InvalidMessageScore() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshQuantum:              time.Second,
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
}
