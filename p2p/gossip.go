package p2p

import (
	"context"

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
