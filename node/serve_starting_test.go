package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/internal/retry"
	"github.com/openmyst/openmyst/tequilapi"
)

// TestProviderStartingSaysWhy: while a served provider starts, its routes
// answer 503 provider_starting saying what the start does (its latest
// progress message) and why the latest attempt failed, so the dashboard
// can show it in words; before, they answered a fixed sentence.
func TestProviderStartingSaysWhy(t *testing.T) {
	svc, err := ServeProvider(context.Background(), ServeConfig{
		Provider: ProviderConfig{Log: testLog()},
		Chain: func(context.Context) (*chain.Client, common.Address, error) {
			return nil, common.Address{}, errors.New("dial tcp 127.0.0.1:1: connection refused")
		},
		Retry: retry.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := svc.Earnings(context.Background())
		var ae *tequilapi.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Body.Code != codeProviderStarting {
			t.Fatalf("earnings while starting: %v", err)
		}
		if strings.Contains(ae.Body.Message, "last attempt failed: dial tcp 127.0.0.1:1: connection refused; next attempt ") {
			if !strings.HasPrefix(ae.Body.Message, "the provider is starting (waiting for the chain)") {
				t.Fatalf("message %q", ae.Body.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt in %q", ae.Body.Message)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The start's progress (here as registration reports it) comes first.
	svc.mu.Lock()
	svc.progress = "registering identity 0x01 with hermes 0x02; waiting for the chain..."
	svc.mu.Unlock()
	_, err = svc.LiveSessions(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "provider_starting: the provider is starting: registering identity 0x01 with hermes 0x02; waiting for the chain...; last attempt failed: ") {
		t.Fatalf("live sessions while registering: %v", err)
	}
}
