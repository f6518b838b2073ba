package node

import (
	"errors"
	"fmt"
	"testing"

	"github.com/openmyst/openmyst/session/consumer"
)

// TestConnectAdmitted: right after the held kill switch admits a
// provider, a session dial that joined a stale p2p dial (begun before the
// admission) fails unreachable; connectAdmitted clears the dial backoff
// and dials once more. Other failures are not redialled.
func TestConnectAdmitted(t *testing.T) {
	stale := fmt.Errorf("consumer: connect to provider 0x1: %w: failed to dial: [/ip4/10.99.0.1/tcp/42783] failed to negotiate security protocol: context deadline exceeded", consumer.ErrUnreachable)
	refused := errors.New("consumer: session refused: full")
	for _, tc := range []struct {
		name        string
		errs        []error
		wantCalls   int
		wantForgets int
		wantErr     error
	}{
		{"connects", []error{nil}, 1, 1, nil},
		{"stale dial, then admitted", []error{stale, nil}, 2, 2, nil},
		{"unreachable twice", []error{stale, stale}, 2, 2, consumer.ErrUnreachable},
		{"refused", []error{refused}, 1, 1, refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, forgets := 0, 0
			connect := func() (*consumer.Connection, error) {
				err := tc.errs[calls]
				calls++
				if err != nil {
					return nil, err
				}
				return &consumer.Connection{}, nil
			}
			conn, err := connectAdmitted(connect, func() { forgets++ })
			if calls != tc.wantCalls || forgets != tc.wantForgets {
				t.Errorf("connect calls %d, forgets %d; want %d, %d", calls, forgets, tc.wantCalls, tc.wantForgets)
			}
			if tc.wantErr == nil && (err != nil || conn == nil) {
				t.Errorf("err %v, conn %v; want a connection", err, conn)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
}
