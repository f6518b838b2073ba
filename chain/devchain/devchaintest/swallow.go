package devchaintest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
)

// SwallowRPC forwards JSON-RPC to a chain but answers
// eth_sendRawTransaction itself, as a node that accepted the transaction
// into its pool and never mines it would, and keeps the transactions: the
// sender is then stopped (or killed) with its transaction pending.
type SwallowRPC struct {
	*httptest.Server
	mu  sync.Mutex
	txs []*types.Transaction
	got chan struct{} // one value per swallowed transaction
}

// NewSwallowRPC starts a SwallowRPC in front of the JSON-RPC at upstream,
// closed when the test ends.
func NewSwallowRPC(tb testing.TB, upstream string) *SwallowRPC {
	tb.Helper()
	s := &SwallowRPC{got: make(chan struct{}, 16)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			ID     json.RawMessage   `json:"id"`
			Method string            `json:"method"`
			Params []json.RawMessage `json:"params"`
		}
		if json.Unmarshal(body, &req) == nil && req.Method == "eth_sendRawTransaction" && len(req.Params) == 1 {
			var raw hexutil.Bytes
			tx := new(types.Transaction)
			if err := json.Unmarshal(req.Params[0], &raw); err != nil || tx.UnmarshalBinary(raw) != nil {
				http.Error(w, "bad transaction", http.StatusBadRequest)
				return
			}
			s.mu.Lock()
			s.txs = append(s.txs, tx)
			s.mu.Unlock()
			select {
			case s.got <- struct{}{}:
			default: // nobody counts them any more
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": tx.Hash()})
			return
		}
		resp, err := http.Post(upstream, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	tb.Cleanup(s.Close)
	return s
}

// Swallowed waits for the next swallowed transaction and returns it,
// failing when the sender ends first (done) or ctx ends.
func (s *SwallowRPC) Swallowed(ctx context.Context, tb testing.TB, done <-chan error) *types.Transaction {
	tb.Helper()
	select {
	case <-s.got:
	case err := <-done:
		tb.Fatalf("sender ended before sending: %v", err)
	case <-ctx.Done():
		tb.Fatal("no transaction was sent")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txs[len(s.txs)-1]
}

// SentSince lists the transactions from sent in the blocks after head up
// to the current head of the chain eth reads, in order.
func SentSince(ctx context.Context, tb testing.TB, eth *ethclient.Client, from common.Address, head uint64) []*types.Transaction {
	tb.Helper()
	id, err := eth.ChainID(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	now, err := eth.BlockNumber(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	signer := types.LatestSignerForChainID(id)
	var sent []*types.Transaction
	for n := head + 1; n <= now; n++ {
		b, err := eth.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			tb.Fatal(err)
		}
		for _, tx := range b.Transactions() {
			if f, err := types.Sender(signer, tx); err == nil && f == from {
				sent = append(sent, tx)
			}
		}
	}
	return sent
}
