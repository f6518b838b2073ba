package transactor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
)

// Client calls a transactor's HTTP API for identities of one deployment.
type Client struct {
	base string
	hc   *http.Client
	dep  chain.Deployment
}

// NewClient returns a client of the transactor at baseURL (http or https)
// for deployment dep; hc nil uses a client with a 2-minute timeout (a
// relayed call waits until its transaction is mined).
func NewClient(baseURL string, dep chain.Deployment, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("transactor: URL %q is not an http(s) URL", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, dep: dep}, nil
}

// APIError is a non-2xx answer of the transactor.
type APIError struct {
	// Status is the HTTP status; Code and Message the error body.
	Status        int
	Code, Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("transactor: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, in any, out interface{ decode([]byte) error }) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("transactor: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("transactor: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("transactor: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("transactor: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			e = ErrorResponse{Code: "http", Message: strings.TrimSpace(string(data))}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	return out.decode(data)
}

type quoteOut struct{ q Quote }

func (o *quoteOut) decode(b []byte) (err error) { o.q, err = DecodeQuote(b); return err }

type txOut struct{ r TxResponse }

func (o *txOut) decode(b []byte) error {
	if err := strictjson.Unmarshal(b, &o.r); err != nil {
		return fmt.Errorf("transactor: answer: %w", err)
	}
	if o.r.Tx == (common.Hash{}) {
		return fmt.Errorf("transactor: answer without a transaction hash")
	}
	return nil
}

// Quote fetches a fee quote and checks it is signed by the account it
// names, for this deployment's chain, and unexpired.
func (c *Client) Quote(ctx context.Context) (Quote, error) {
	var o quoteOut
	if err := c.do(ctx, http.MethodGet, PathFees, nil, &o); err != nil {
		return Quote{}, err
	}
	if err := o.q.Verify(c.dep.ChainID, o.q.Transactor, time.Now()); err != nil {
		return Quote{}, err
	}
	return o.q, nil
}

// RegisterPlan is how a registration pays under q: the quoted fee now when
// the identity's channel holds it, otherwise the quoted fee deferred (owed
// to the transactor, paid from the first provider settlements).
func RegisterPlan(q Quote, channelBalance *big.Int) (fee *big.Int, deferred bool) {
	fee = new(big.Int).Set(q.Fees.Register)
	return fee, channelBalance == nil || channelBalance.Cmp(fee) < 0
}

// Register has the transactor register signer with hermes for fee, paid
// now from its channel or, with deferred, from its first settlements.
func (c *Client) Register(ctx context.Context, q Quote, signer identity.Signer, hermes common.Address, fee *big.Int, deferred bool, beneficiary common.Address) (TxResponse, error) {
	sig, beneficiary, err := c.signRegistration(signer, hermes, fee, deferred, beneficiary)
	if err != nil {
		return TxResponse{}, err
	}
	var o txOut
	err = c.do(ctx, http.MethodPost, PathRegister, RegisterRequest{Quote: q, Identity: signer.Address(), Hermes: hermes, Fee: fee, Beneficiary: beneficiary, Deferred: deferred, Signature: sig}, &o)
	return o.r, err
}

// signRegistration signs the Registry's registration digest of signer
// with hermes for fee (deferred: the pay-from-settlements form). A zero
// beneficiary is signer itself; the beneficiary signed is returned.
func (c *Client) signRegistration(signer identity.Signer, hermes common.Address, fee *big.Int, deferred bool, beneficiary common.Address) ([]byte, common.Address, error) {
	if beneficiary == (common.Address{}) {
		beneficiary = signer.Address()
	}
	chainID := new(big.Int).SetUint64(c.dep.ChainID)
	d := chain.RegisterDigest(chainID, c.dep.Registry, signer.Address(), hermes, fee, beneficiary)
	if deferred {
		d = chain.RegisterDeferredDigest(chainID, c.dep.Registry, signer.Address(), hermes, fee, beneficiary)
	}
	sig, err := signer.Sign(d[:])
	if err != nil {
		return nil, beneficiary, fmt.Errorf("transactor: sign registration: %w", err)
	}
	return sig, beneficiary, nil
}

// SetBeneficiary has the transactor change signer's beneficiary with
// nonce (the chain's last + 1), paying fee from its channel with hermes.
func (c *Client) SetBeneficiary(ctx context.Context, q Quote, signer identity.Signer, beneficiary, hermes common.Address, fee *big.Int, nonce uint64) (TxResponse, error) {
	d := chain.BeneficiaryDigest(new(big.Int).SetUint64(c.dep.ChainID), c.dep.Registry, signer.Address(), beneficiary, hermes, fee, nonce)
	sig, err := signer.Sign(d[:])
	if err != nil {
		return TxResponse{}, fmt.Errorf("transactor: sign beneficiary change: %w", err)
	}
	var o txOut
	err = c.do(ctx, http.MethodPost, PathBeneficiary, BeneficiaryRequest{Quote: q, Identity: signer.Address(), Beneficiary: beneficiary, Hermes: hermes, Fee: fee, Nonce: nonce, Signature: sig}, &o)
	return o.r, err
}

// Settle has the transactor settle a provider promise.
func (c *Client) Settle(ctx context.Context, q Quote, s chain.Settlement) (TxResponse, error) {
	var o txOut
	err := c.do(ctx, http.MethodPost, PathSettle, SettleRequest{Quote: q, Settlement: s}, &o)
	return o.r, err
}

// Redeem redeems voucher code for signer: a starter top-up of its channel
// with hermes and a zero-fee registration.
func (c *Client) Redeem(ctx context.Context, code string, signer identity.Signer, hermes, beneficiary common.Address) (TxResponse, error) {
	sig, beneficiary, err := c.signRegistration(signer, hermes, new(big.Int), false, beneficiary)
	if err != nil {
		return TxResponse{}, err
	}
	var o txOut
	err = c.do(ctx, http.MethodPost, PathRedeem, RedeemRequest{Voucher: code, Identity: signer.Address(), Hermes: hermes, Beneficiary: beneficiary, Signature: sig}, &o)
	return o.r, err
}
