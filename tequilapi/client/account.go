package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/tequilapi"
)

// Account returns id's on-chain account (GET /identities/{id}/account).
func (c *Client) Account(ctx context.Context, id common.Address) (tequilapi.AccountDTO, error) {
	return call[tequilapi.AccountDTO](ctx, c, http.MethodGet, "/identities/"+id.Hex()+"/account", nil)
}

// Register registers id (unlocked in the daemon) with the daemon's hermes
// and creates its channel.
func (c *Client) Register(ctx context.Context, id common.Address, req tequilapi.RegisterRequest) (tequilapi.RegisterResponse, error) {
	return call[tequilapi.RegisterResponse](ctx, c, http.MethodPost, "/identities/"+id.Hex()+"/register", req)
}

// TopUp adds amount MYST (a decimal, e.g. "1.5") to id's channel.
func (c *Client) TopUp(ctx context.Context, id common.Address, amount string, fromTransactor bool) (tequilapi.TopupResponse, error) {
	return call[tequilapi.TopupResponse](ctx, c, http.MethodPost, "/identities/"+id.Hex()+"/topup", tequilapi.TopupRequest{Amount: amount, FromTransactor: fromTransactor})
}

// SetBeneficiary changes id's payout address.
func (c *Client) SetBeneficiary(ctx context.Context, id, beneficiary common.Address) (tequilapi.BeneficiaryResponse, error) {
	return call[tequilapi.BeneficiaryResponse](ctx, c, http.MethodPut, "/identities/"+id.Hex()+"/beneficiary", tequilapi.BeneficiaryRequest{Address: beneficiary.Hex()})
}

// SettlePromise settles st, a promise concerning id, on chain.
func (c *Client) SettlePromise(ctx context.Context, id common.Address, st chain.Settlement) (tequilapi.AccountSettleResponse, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return tequilapi.AccountSettleResponse{}, fmt.Errorf("tequilapi client: encode settlement: %w", err)
	}
	var out tequilapi.AccountSettleResponse
	err = c.Do(ctx, http.MethodPost, "/identities/"+id.Hex()+"/settle", tequilapi.AccountSettleRequest{Settlement: raw}, &out)
	return out, err
}
