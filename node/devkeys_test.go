package node

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
)

// TestDevKeysOnlyOnDevChains: a deployment that says faucet gets the
// public dev transactor key on a dev chain only; on any other chain id it
// is refused (before, any faucet deployment got it).
func TestDevKeysOnlyOnDevChains(t *testing.T) {
	devAddr := devchain.DevAddress(devchain.TransactorAccount)
	for _, id := range chain.DevChainIDs {
		k, err := TransactorKey("", chain.Deployment{ChainID: id, Faucet: true})
		if err != nil || k == nil || crypto.PubkeyToAddress(k.PublicKey) != devAddr {
			t.Fatalf("chain %d: key %v err %v, want the dev transactor", id, k, err)
		}
	}
	for _, id := range []uint64{1, 5, 137, 80002, 11155111} {
		k, err := TransactorKey("", chain.Deployment{ChainID: id, Faucet: true})
		if !errors.Is(err, ErrDevKeysRefused) || k != nil {
			t.Fatalf("chain %d with faucet: key %v err %v, want ErrDevKeysRefused", id, k, err)
		}
		if err := DevKeysAllowed(chain.Deployment{ChainID: id, Faucet: true}); !errors.Is(err, ErrDevKeysRefused) {
			t.Fatalf("chain %d: DevKeysAllowed %v", id, err)
		}
		// Without a faucet there is simply no key (read-only).
		if k, err := TransactorKey("", chain.Deployment{ChainID: id}); k != nil || err != nil {
			t.Fatalf("chain %d without faucet: %v %v", id, k, err)
		}
	}
	if err := DevKeysAllowed(chain.Deployment{ChainID: 1337}); !errors.Is(err, ErrDevKeysRefused) {
		t.Fatalf("dev chain without faucet: %v", err)
	}
}

// TestGossipHeartbeatFastOnDevChainsOnly: the 200 ms GossipSub heartbeat
// is for dev chains; every other chain keeps libp2p's default (0 here).
func TestGossipHeartbeatFastOnDevChainsOnly(t *testing.T) {
	for _, id := range chain.DevChainIDs {
		if got := GossipHeartbeat(id); got != 200*time.Millisecond {
			t.Fatalf("chain %d: %v", id, got)
		}
	}
	for _, id := range []uint64{1, 10, 137, 80002} {
		if got := GossipHeartbeat(id); got != 0 {
			t.Fatalf("chain %d: heartbeat %v, want libp2p's default", id, got)
		}
	}
}
