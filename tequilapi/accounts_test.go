package tequilapi

import (
	"context"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
)

// TestAccountsWithoutKeystore: Accounts built without IDs (the CLI's
// read-only use) refuses the signing calls with identity.ErrLocked.
func TestAccountsWithoutKeystore(t *testing.T) {
	ctx := context.Background()
	a := &Accounts{}
	id, ben := common.HexToAddress("0x01"), common.HexToAddress("0x02")
	if _, err := a.Register(ctx, id, RegisterRequest{}); !errors.Is(err, identity.ErrLocked) {
		t.Errorf("Register: %v, want ErrLocked", err)
	}
	if _, err := a.SetBeneficiary(ctx, id, ben); !errors.Is(err, identity.ErrLocked) {
		t.Errorf("SetBeneficiary: %v, want ErrLocked", err)
	}
}
