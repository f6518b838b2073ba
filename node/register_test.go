package node

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
)

// TestEnsureRegisteredOnce: an unregistered identity is registered once,
// with progress before and after; a registered one is left alone without
// a word; an error of the registration step is returned as it is.
func TestEnsureRegisteredOnce(t *testing.T) {
	ctx, dc := testDevChain(t)
	dep := dc.Deployment()
	c, err := OpenChain(ctx, ChainConfig{RPC: dc.URL(), Deployed: &dep, Tx: TxRequired, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := keytest.Key(t)
	s := identity.NewKeySigner(k)
	boom := errors.New("boom")
	err = ensureRegistered(ctx, c.Client, s, c.Hermes, nil, func(func(string)) (*big.Int, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("failing step: %v", err)
	}
	var said []string
	say := func(m string) { said = append(said, m) }
	if err := EnsureRegistered(ctx, c.Client, s, c.Hermes, say); err != nil {
		t.Fatal(err)
	}
	if len(said) != 2 || !strings.HasPrefix(said[0], "registering identity") || !strings.HasSuffix(said[1], "registered") {
		t.Fatalf("progress %q", said)
	}
	if ok, err := c.Client.IsRegistered(ctx, s.Address()); !ok || err != nil {
		t.Fatalf("registered %v %v", ok, err)
	}
	said = nil
	called := false
	err = ensureRegistered(ctx, c.Client, s, c.Hermes, say, func(func(string)) (*big.Int, error) { called = true; return nil, nil })
	if err != nil || called || len(said) != 0 {
		t.Fatalf("registered again: %v, called %v, said %q", err, called, said)
	}
}
