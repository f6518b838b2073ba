package node

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/tequilapi"
)

// pendingChain is a dev chain seen by the dev transactor account: its
// nonce and the nonces it has had mined since the test began.
type pendingChain struct {
	dc    *devchain.Chain
	eth   *ethclient.Client
	from  common.Address
	head  uint64
	nonce uint64
}

func newPendingChain(ctx context.Context, t *testing.T, dc *devchain.Chain) *pendingChain {
	t.Helper()
	eth, err := ethclient.DialContext(ctx, dc.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eth.Close)
	p := &pendingChain{dc: dc, eth: eth, from: devchain.DevAddress(devchain.TransactorAccount)}
	if p.head, err = eth.BlockNumber(ctx); err != nil {
		t.Fatal(err)
	}
	if p.nonce, err = eth.NonceAt(ctx, p.from, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

// minedNonces lists the nonces of the transactor's transactions mined
// since the test began, and whether tx is among them.
func (p *pendingChain) minedNonces(ctx context.Context, t *testing.T, tx common.Hash) ([]uint64, bool) {
	t.Helper()
	var nonces []uint64
	found := false
	for _, stx := range devchaintest.SentSince(ctx, t, p.eth, p.from, p.head) {
		nonces = append(nonces, stx.Nonce())
		found = found || stx.Hash() == tx
	}
	return nonces, found
}

// waitMined waits until tx has a receipt.
func (p *pendingChain) waitMined(ctx context.Context, t *testing.T, tx common.Hash, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err := p.eth.TransactionReceipt(ctx, tx); err == nil && r != nil {
			return
		}
	}
	t.Fatalf("%s: %s never mined", what, tx.Hex())
}

// pendingDaemon is a daemon config on l's data dir talking to rpc.
func pendingDaemon(t *testing.T, l *Local, rpc string) DaemonConfig {
	port := servetest.FreePort(t)
	l.TequilapiURL = "http://127.0.0.1:" + strconv.Itoa(port)
	return DaemonConfig{
		DataDir: l.DataDir, LightScrypt: true, Log: l.log(),
		API:   tequilapi.Config{Address: "127.0.0.1", Port: port, PasswordFile: l.PasswordFile()},
		Chain: ChainConfig{RPC: rpc, Deployment: l.DeploymentPath(), Log: l.log()},
		P2P:   NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, ChainID: 1337},
	}
}

// topUp tops up id's channel by amount MYST through l (the daemon when it
// runs and f names no hermes, else directly).
func topUp(ctx context.Context, l *Local, f AccountFlags, id common.Address, amount string) error {
	f.Identity = id.Hex()
	return l.WithAccounts(ctx, f, false, true, func(api AccountAPI, id common.Address) error {
		_, err := api.TopUp(ctx, id, amount, false)
		return err
	})
}

// TestAccountTxResumedAfterRestart: `myst account topup` is killed while
// its transaction is pending (the RPC took it and never mined it); the
// daemon started next on the data dir finishes that transaction under its
// nonce without being asked, and the next command's top-up takes the
// following nonce: each top-up is mined once, no nonce is skipped or
// used twice. Before the node kept its pending transactions the killed
// top-up was never mined and the next one reused its nonce.
func TestAccountTxResumedAfterRestart(t *testing.T) {
	ctx, dc := testDevChain(t)
	l := &Local{DataDir: t.TempDir(), LightScrypt: true, TequilapiURL: "http://127.0.0.1:1", Log: slog.New(slog.DiscardHandler)}
	if err := dc.Deployment().Save(l.DeploymentPath()); err != nil {
		t.Fatal(err)
	}
	pc := newPendingChain(ctx, t, dc)
	id := common.HexToAddress("0x00000000000000000000000000000000000a11ce")
	ch := dc.Deployment().ChannelAddress(id)
	proxy := devchaintest.NewSwallowRPC(t, dc.URL())

	// The command, killed while its transaction is pending.
	cctx, kill := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- topUp(cctx, l, AccountFlags{ChainFlags: ChainFlags{RPC: proxy.URL}}, id, "3") }()
	first := proxy.Swallowed(ctx, t, done)
	kill()
	if err := <-done; err == nil {
		t.Fatal("top-up finished without being mined")
	}
	if first.Nonce() != pc.nonce {
		t.Fatalf("first top-up has nonce %d, want %d", first.Nonce(), pc.nonce)
	}

	// The daemon starts and finishes it.
	_, stop := startTestDaemon(t, pendingDaemon(t, l, dc.URL()))
	pc.waitMined(ctx, t, first.Hash(), "the killed command's top-up after the daemon started")
	stop()

	// The next command sends with the next nonce.
	l.TequilapiURL = "http://127.0.0.1:1"
	if err := topUp(ctx, l, AccountFlags{ChainFlags: ChainFlags{RPC: dc.URL()}}, id, "2"); err != nil {
		t.Fatal(err)
	}
	pc.wantTwoTopUps(ctx, t, l, first.Hash(), ch)
}

// TestAccountTxDaemonAndCommandTakeTurns: the daemon's top-up is pending
// (its RPC never mines it) when a command on the same data dir sends
// directly from the same key (--hermes given): the command waits instead
// of handing out a nonce of its own. The daemon stops before its
// transaction is mined; the command then finishes the daemon's top-up
// under its nonce and sends its own with the next one.
func TestAccountTxDaemonAndCommandTakeTurns(t *testing.T) {
	ctx, dc := testDevChain(t)
	l := &Local{DataDir: t.TempDir(), LightScrypt: true, Log: slog.New(slog.DiscardHandler)}
	if err := dc.Deployment().Save(l.DeploymentPath()); err != nil {
		t.Fatal(err)
	}
	id := newDefaultIdentity(ctx, t, l)
	pc := newPendingChain(ctx, t, dc)
	ch := dc.Deployment().ChannelAddress(id)
	proxy := devchaintest.NewSwallowRPC(t, dc.URL())
	_, stop := startTestDaemon(t, pendingDaemon(t, l, proxy.URL))
	defer stop()

	dctx, cancelDaemonTx := context.WithCancel(ctx)
	daemonDone := make(chan error, 1)
	go func() { daemonDone <- topUp(dctx, l, AccountFlags{ChainFlags: ChainFlags{RPC: proxy.URL}}, id, "3") }()
	first := proxy.Swallowed(ctx, t, daemonDone)

	cmdDone := make(chan error, 1)
	direct := AccountFlags{ChainFlags: ChainFlags{RPC: dc.URL(), Hermes: dc.Deployment().Hermes.Hex()}}
	go func() { cmdDone <- topUp(ctx, l, direct, id, "2") }()
	time.Sleep(time.Second)
	if n, err := pc.eth.PendingNonceAt(ctx, pc.from); err != nil || n != pc.nonce {
		t.Fatalf("chain nonce %d (%v) while the daemon's top-up is pending, want %d: the command sent beside it", n, err, pc.nonce)
	}
	select {
	case err := <-cmdDone:
		t.Fatalf("command ended while the daemon held the account: %v", err)
	default:
	}

	// The daemon stops before its transaction is mined.
	cancelDaemonTx()
	if err := <-daemonDone; err == nil {
		t.Fatal("daemon top-up finished without being mined")
	}
	stop()
	if err := <-cmdDone; err != nil {
		t.Fatalf("command: %v", err)
	}
	pc.wantTwoTopUps(ctx, t, l, first.Hash(), ch)
}

// wantTwoTopUps checks the end of a test that topped up ch by 3 and 2
// MYST: first and then the other were mined under the next two nonces, the
// channel holds 5 MYST (each once) and no pending record is left.
func (p *pendingChain) wantTwoTopUps(ctx context.Context, t *testing.T, l *Local, first common.Hash, ch common.Address) {
	t.Helper()
	nonces, found := p.minedNonces(ctx, t, first)
	if !found || len(nonces) != 2 || nonces[0] != p.nonce || nonces[1] != p.nonce+1 {
		t.Fatalf("mined nonces %v (the first top-up mined: %v), want [%d %d]", nonces, found, p.nonce, p.nonce+1)
	}
	c := devchaintest.Client(ctx, t, p.dc, slog.New(slog.DiscardHandler))
	if b, err := c.TokenBalance(ctx, ch); err != nil || b.Cmp(money.MYST(5)) != 0 {
		t.Fatalf("channel holds %v MYST (%v), want 5: each top-up once", money.FormatMYST(b), err)
	}
	p.wantNoRecords(ctx, t, l)
}

// wantNoRecords fails unless the data dir keeps no pending transaction
// of the transactor.
func (p *pendingChain) wantNoRecords(ctx context.Context, t *testing.T, l *Local) {
	t.Helper()
	st, err := chain.LockStateDB(ctx, PendingPath(l.PendingDir(), p.from))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ps, err := st.PendingTxs(ctx, p.from); err != nil || len(ps) != 0 {
		t.Fatalf("%d pending records left (%v), want none", len(ps), err)
	}
}
