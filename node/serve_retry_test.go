package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/retry"
	"github.com/openmyst/openmyst/tequilapi"
)

// attempts records when a served provider's start asked for the chain.
type attempts struct {
	mu sync.Mutex
	at []time.Time
}

func (a *attempts) add() {
	a.mu.Lock()
	a.at = append(a.at, time.Now())
	a.mu.Unlock()
}

func (a *attempts) times() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at...)
}

// waitAttempts waits until a counts n attempts.
func (a *attempts) wait(t *testing.T, n int) []time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if at := a.times(); len(at) >= n {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts, want %d", len(a.times()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProviderStartBacksOff: a background provider start whose chain
// does not answer is retried with an exponential backoff (each wait at
// least Retry.Delay(failures)), says when its next attempt runs, and
// counts its failures again from the first when it is started again.
// Before, the start was retried at a fixed interval forever.
func TestProviderStartBacksOff(t *testing.T) {
	var a attempts
	b := retry.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Second}
	cfg := ServeConfig{
		Provider: ProviderConfig{Log: testLog()},
		Chain: func(context.Context) (*chain.Client, common.Address, error) {
			a.add()
			return nil, common.Address{}, errors.New("dial tcp 127.0.0.1:1: connection refused")
		},
		Retry: b,
	}
	svc, err := ServeProvider(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	const n = 6 // waits 10, 20, 40, 80, 160 ms
	at := a.wait(t, n)
	for i := 1; i < n; i++ {
		if gap, want := at[i].Sub(at[i-1]), b.Delay(i); gap < want {
			t.Errorf("wait after failure %d: %s, want at least %s", i, gap, want)
		}
	}
	_, err = svc.Earnings(context.Background())
	var ae *tequilapi.APIError
	if !errors.As(err, &ae) || ae.Body.Code != codeProviderStarting ||
		!strings.Contains(ae.Body.Message, "last attempt failed: dial tcp 127.0.0.1:1: connection refused; next attempt ") {
		t.Fatalf("earnings while starting: %v", err)
	}

	// Started again, the start waits the first delay again: its
	// next attempt is announced Initial after the failure, not 2^6 times.
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	var again attempts
	cfg.Chain = func(context.Context) (*chain.Client, common.Address, error) {
		again.add()
		return nil, common.Address{}, errors.New("connection refused")
	}
	cfg.Retry = retry.Backoff{Initial: 10 * time.Second}
	if err := svc.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	first := again.wait(t, 1)[0]
	var next time.Time
	deadline := time.Now().Add(10 * time.Second)
	for next.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no next attempt after the first failure")
		}
		time.Sleep(5 * time.Millisecond)
		svc.mu.Lock()
		next = svc.nextAttempt
		svc.mu.Unlock()
	}
	if d := next.Sub(first); d < 10*time.Second || d >= 20*time.Second {
		t.Fatalf("next attempt %s after the first failure of a new start, want the first delay (10s)", d)
	}
}

// TestProviderStartRefusedNotRetried: a background provider start that
// fails for its configuration (the chain of another id, a devnet
// shortcut on a real chain) makes one attempt, stops, and the provider
// routes say why and that it is not retried. Before, the start was
// retried forever.
func TestProviderStartRefusedNotRetried(t *testing.T) {
	real := realChain(t, 80002)
	for _, tc := range []struct {
		name  string
		check func(uint64) error
		is    error
	}{
		{"chain id", (&DaemonNode{Config: DaemonConfig{P2P: NetworkConfig{ChainID: 1337}}}).checkChainID, ErrProviderConfig},
		{"devnet shortcut", nil, ErrDevnetShortcut}, // no hermes URL off dev chains
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a attempts
			svc, err := ServeProvider(context.Background(), ServeConfig{
				Provider: ProviderConfig{Log: testLog(), Signer: keytest.Signer(t), DataDir: t.TempDir()},
				Chain: func(context.Context) (*chain.Client, common.Address, error) {
					a.add()
					return real, common.Address{1}, nil
				},
				CheckChainID: tc.check,
				Retry:        retry.Backoff{Initial: time.Millisecond, Max: time.Millisecond},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			svc.mu.Lock()
			done := svc.done
			svc.mu.Unlock()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the start still runs after %d attempts", len(a.times()))
			}
			if n := len(a.times()); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
			svc.mu.Lock()
			startErr := svc.startErr
			svc.mu.Unlock()
			if !errors.Is(startErr, tc.is) || !errors.Is(startErr, ErrProviderConfig) {
				t.Fatalf("start error %v", startErr)
			}
			_, err = svc.Caps(context.Background())
			var ae *tequilapi.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Body.Code != codeProviderRefused ||
				!strings.HasPrefix(ae.Body.Message, "the provider did not start: "+startErr.Error()+"; not retrying") {
				t.Fatalf("caps after the refusal: %v", err)
			}
			if !svc.Serving() {
				t.Fatal("the refused provider's slot is empty: DELETE /service could not clear it")
			}
		})
	}
}
