package node

import (
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/tequilapi"
)

// TestChainConnFailover: a node given several RPC URLs (--chain.rpc, a
// network file's rpc list) reads and sends through the second when the
// first does not answer, and refuses an RPC on another chain.
func TestChainConnFailover(t *testing.T) {
	ctx, dc := testDevChain(t)
	log := slog.New(slog.DiscardHandler)
	dep := dc.Deployment()
	dead := "http://127.0.0.1:" + strconv.Itoa(servetest.FreePort(t))

	cc := NewChainConn(ChainConfig{RPC: dead + "," + dc.URL(), Deployed: &dep, Log: log})
	defer cc.Close()
	c, _, err := cc.Client(ctx)
	if err != nil {
		t.Fatalf("first RPC down, second up: %v", err)
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000fa11e")
	if _, err := c.Mint(ctx, to, big.NewInt(7)); err != nil {
		t.Fatalf("transaction with the first RPC down: %v", err)
	}
	if b, err := c.TokenBalance(ctx, to); err != nil || b.Int64() != 7 {
		t.Fatalf("balance %v, %v; want 7", b, err)
	}

	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x89"}`)
	}))
	defer wrong.Close()
	bad := NewChainConn(ChainConfig{RPC: dc.URL() + "," + wrong.URL, Deployed: &dep, Log: log})
	defer bad.Close()
	if _, _, err := bad.Client(ctx); !errors.Is(err, chain.ErrWrongChain) || !errors.Is(err, tequilapi.ErrChainUnavailable) {
		t.Fatalf("an RPC on chain 137: %v, want ErrWrongChain", err)
	}
}
