package node

import (
	"context"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
)

// TestStartHermesLoopbackOnly: without TLS (and without InsecureHTTP) the
// hermes refuses a listen address that is not loopback, before reading
// the chain or opening its store.
func TestStartHermesLoopbackOnly(t *testing.T) {
	k := keytest.Key(t)
	for _, listen := range []string{"0.0.0.0:0", "[::]:4060", "10.1.2.3:4060", ":4060"} {
		_, err := StartHermes(context.Background(), HermesConfig{Chain: &chain.Client{}, Operator: identity.NewKeySigner(k), DSN: t.TempDir() + "/h.db", Listen: listen})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("listen %s: %v, want a loopback-only refusal", listen, err)
		}
	}
}
