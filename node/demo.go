package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/tunnel"
)

// DemoConfig configures RunDemo.
type DemoConfig struct {
	// DataDir for the devnet ("": a temp dir, removed afterwards).
	DataDir string
	// Size is how many bytes to download (default 20 MiB).
	Size int
	// Country picks the provider (default "DE", a paid one).
	Country string
	// Progress receives human-readable progress lines.
	Progress func(string)
	// Log receives events.
	Log *slog.Logger
}

// Balances are on-chain token balances, in wei.
type Balances struct {
	ConsumerChannel *big.Int `json:"consumer_channel"`
	Provider        *big.Int `json:"provider"`
	Hermes          *big.Int `json:"hermes"`
}

// DemoReport is what RunDemo observed.
type DemoReport struct {
	Proposals         []market.Proposal `json:"proposals"`
	Provider          common.Address    `json:"provider"`
	ConnectTime       time.Duration     `json:"connect_time"`
	Path              string            `json:"path"`
	ConnectFirstByte  time.Duration     `json:"connect_to_first_byte"`
	DownloadTime      time.Duration     `json:"download_time"`
	Bytes             int64             `json:"bytes_downloaded"`
	TunnelBytes       uint64            `json:"tunnel_bytes"`
	Invoices          int               `json:"invoices"`
	Promised          *big.Int          `json:"promised"`
	HermesEarned      *big.Int          `json:"provider_earned"`
	SettledAmount     *big.Int          `json:"settled_amount"`
	SettlementTx      common.Hash       `json:"settlement_tx"`
	Before, After     Balances          `json:"-"`
	HermesFeeBps      uint16            `json:"hermes_fee_bps"`
	SessionDuration   time.Duration     `json:"session_duration"`
	ProviderReceived  *big.Int          `json:"provider_received"`
	ConsumerChannelDe *big.Int          `json:"consumer_channel_decrease"`
}

// ThroughputMiBps is the download throughput in MiB/s.
func (r DemoReport) ThroughputMiBps() float64 {
	if r.DownloadTime <= 0 {
		return 0
	}
	return float64(r.Bytes) / (1 << 20) / r.DownloadTime.Seconds()
}

// RunDemo starts a devnet, lists its proposals, connects to a paid
// provider through SOCKS5, downloads Size bytes from a local HTTP server
// through the tunnel, disconnects, settles the provider on chain and
// reports what happened.
func RunDemo(ctx context.Context, cfg DemoConfig) (DemoReport, error) {
	var rep DemoReport
	cfg.Size = defaults.Positive(cfg.Size, 20<<20)
	cfg.Country = cmp.Or(cfg.Country, "DE")
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	// The download source: a local HTTP server the exits may reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(cfg.Size))
		for left := cfg.Size; left > 0; {
			n := min(left, len(chunk))
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			left -= n
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	rule, err := tunnel.ParseRule(fmt.Sprintf("tcp:127.0.0.1/32 port %d", ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		return rep, err
	}

	d, err := StartDevnet(ctx, DevnetConfig{
		DataDir: cfg.DataDir, Allow: []tunnel.Rule{rule}, Progress: cfg.Progress, Log: cfg.Log,
		Payment: Payment{Interval: 2 * time.Second, CheckEvery: 200 * time.Millisecond, Grace: 10 * time.Second},
	})
	if err != nil {
		return rep, err
	}
	defer d.Close()
	c, err := d.StartConsumer(ctx, "")
	if err != nil {
		return rep, err
	}
	defer c.Close()
	cfg.Progress("discovering proposals over libp2p")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	rep.Proposals, err = c.WaitProposals(wctx, market.Filter{}, len(d.Providers))
	cancel()
	if err != nil {
		return rep, err
	}
	var prov *Provider
	pick, err := consumer.Pick(rep.Proposals, market.Filter{Country: cfg.Country})
	if err != nil {
		return rep, fmt.Errorf("node: no %s provider: %w", cfg.Country, err)
	}
	for _, p := range d.Providers {
		if p.Address() == pick.ProviderID {
			prov = p
		}
	}
	if prov == nil {
		return rep, errors.New("node: picked provider is not part of the devnet")
	}
	rep.Provider = prov.Address()
	dep := d.Chain.Deployment()
	hs, err := d.Client.HermesState(ctx, dep.Hermes)
	if err != nil {
		return rep, err
	}
	rep.HermesFeeBps = hs.FeeBps
	balances := func() (Balances, error) {
		var b Balances
		st, err := d.Client.ChannelState(ctx, c.ChannelAddress)
		if err != nil {
			return b, err
		}
		b.ConsumerChannel = st.Balance
		if b.Provider, err = d.Client.TokenBalance(ctx, prov.Address()); err != nil {
			return b, err
		}
		b.Hermes, err = d.Client.TokenBalance(ctx, dep.Hermes)
		return b, err
	}
	if rep.Before, err = balances(); err != nil {
		return rep, err
	}

	cfg.Progress(fmt.Sprintf("connecting to %s (%s) through SOCKS5", pick.ProviderID.Hex(), pick.Location.Country))
	t0 := time.Now()
	conn, err := c.Sessions.Connect(ctx, pick, consumer.Options{SOCKSListen: "127.0.0.1:0"})
	if err != nil {
		return rep, err
	}
	rep.ConnectTime = time.Since(t0)
	rep.Path = conn.Path()
	cfg.Progress(fmt.Sprintf("tunnel up over the %s path (ICE through the devnet's STUN/TURN relay)", rep.Path))
	proxyURL := &url.URL{Scheme: "socks5", Host: conn.SOCKSAddr().String()}
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}
	// A download that receives nothing for demoStall fails instead of
	// hanging the demo (a tunnel that stopped carrying data).
	dctx, stalled := context.WithCancelCause(ctx)
	defer stalled(nil)
	idle := time.AfterFunc(demoStall, func() {
		stalled(fmt.Errorf("node: the download through the tunnel received nothing for %s", demoStall))
	})
	defer idle.Stop()
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	if err != nil {
		return rep, err
	}
	cfg.Progress(fmt.Sprintf("downloading %d MiB through the tunnel", cfg.Size>>20))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		_ = conn.Disconnect(ctx)
		return rep, fmt.Errorf("node: download through the tunnel: %w", demoCause(dctx, err))
	}
	body := progressReader{r: resp.Body, progress: func() { idle.Reset(demoStall) }}
	first := make([]byte, 1)
	if _, err := io.ReadFull(body, first); err != nil {
		resp.Body.Close()
		_ = conn.Disconnect(ctx)
		return rep, demoCause(dctx, err)
	}
	rep.ConnectFirstByte = time.Since(t0)
	tDown := time.Now()
	n, err := io.Copy(io.Discard, body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	idle.Stop()
	rep.DownloadTime = time.Since(tDown)
	rep.Bytes = n + 1
	if err != nil {
		_ = conn.Disconnect(ctx)
		return rep, demoCause(dctx, err)
	}
	// Pay for the traffic: wait for the invoice after the download.
	paidBefore := conn.PayerStats().Invoices
	deadline := time.Now().Add(10 * time.Second)
	for conn.PayerStats().Invoices < paidBefore+1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	st := conn.Status()
	rep.TunnelBytes = st.RxBytes + st.TxBytes
	rep.SessionDuration = st.Duration
	cfg.Progress("disconnecting")
	ended := make(chan struct{}, 1)
	prov.Sessions.OnEnded(func(e provider.Ended) {
		select {
		case ended <- struct{}{}:
		default:
		}
	})
	if err := conn.Disconnect(ctx); err != nil {
		return rep, err
	}
	select {
	case <-ended:
	case <-time.After(15 * time.Second):
		return rep, errors.New("node: provider did not close the session")
	}
	ps := conn.PayerStats()
	rep.Invoices, rep.Promised = ps.Invoices, ps.Paid
	cfg.Progress("hermes settles the consumer's promise; provider settles its earnings on chain")
	if _, err := d.Hermes.Service.SettleOnce(ctx); err != nil {
		return rep, fmt.Errorf("node: hermes settlement: %w", err)
	}
	earn, err := prov.Earnings(ctx)
	if err != nil {
		return rep, err
	}
	rep.HermesEarned = earn.Earned
	s, err := prov.Settle(ctx)
	if err != nil {
		return rep, err
	}
	rep.SettledAmount, rep.SettlementTx = s.Amount, s.Tx
	if rep.After, err = balances(); err != nil {
		return rep, err
	}
	rep.ProviderReceived = new(big.Int).Sub(rep.After.Provider, rep.Before.Provider)
	rep.ConsumerChannelDe = new(big.Int).Sub(rep.Before.ConsumerChannel, rep.After.ConsumerChannel)
	return rep, nil
}

// demoStall is how long the demo's download may receive nothing.
const demoStall = 30 * time.Second

// demoCause is err, or why ctx was cancelled when it was (the download
// stalled).
func demoCause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// progressReader calls progress after every read that returned data.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}
