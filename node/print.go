package node

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"strings"
	"text/tabwriter"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/tequilapi"
)

// mystOf formats v in MYST (nil: 0).
func mystOf(v *big.Int) string {
	if v == nil {
		return "0"
	}
	return money.FormatMYST(v) + " MYST"
}

// Print writes the report (`myst demo`): the proposals seen, the
// session's timings and payments, the on-chain balances before and after,
// and whether what the consumer paid is exactly what the provider
// received plus the hermes fee.
func (r DemoReport) Print(w io.Writer) error {
	fmt.Fprintf(w, "\nproposals seen: %d\n", len(r.Proposals))
	if err := tequilapi.WriteProposalTable(w, tequilapi.Listed(r.Proposals, nil)); err != nil {
		return err
	}
	fees := new(big.Int).Sub(r.After.Hermes, r.Before.Hermes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nsession with\t%s\n", r.Provider.Hex())
	fmt.Fprintf(tw, "connect (request, tunnel up)\t%s\n", r.ConnectTime.Round(100_000))
	fmt.Fprintf(tw, "connect -> first byte\t%s\n", r.ConnectFirstByte.Round(100_000))
	fmt.Fprintf(tw, "downloaded\t%d bytes in %s (%.1f MiB/s)\n", r.Bytes, r.DownloadTime.Round(1_000_000), r.ThroughputMiBps())
	fmt.Fprintf(tw, "tunnel bytes (up+down)\t%d\n", r.TunnelBytes)
	fmt.Fprintf(tw, "session duration\t%s\n", r.SessionDuration.Round(1_000_000))
	fmt.Fprintf(tw, "invoices paid\t%d\n", r.Invoices)
	fmt.Fprintf(tw, "MYST promised by consumer\t%s\n", mystOf(r.Promised))
	fmt.Fprintf(tw, "provider earnings (hermes)\t%s\n", mystOf(r.HermesEarned))
	fmt.Fprintf(tw, "settled on chain\t%s\n", mystOf(r.SettledAmount))
	fmt.Fprintf(tw, "settlement tx\t%s\n", r.SettlementTx.Hex())
	fmt.Fprintf(tw, "\non-chain balances\tbefore\tafter\n")
	fmt.Fprintf(tw, "consumer channel\t%s\t%s\n", mystOf(r.Before.ConsumerChannel), mystOf(r.After.ConsumerChannel))
	fmt.Fprintf(tw, "provider\t%s\t%s\n", mystOf(r.Before.Provider), mystOf(r.After.Provider))
	fmt.Fprintf(tw, "hermes contract\t%s\t%s\n", mystOf(r.Before.Hermes), mystOf(r.After.Hermes))
	fmt.Fprintf(tw, "\nconsumer paid on chain\t%s\n", mystOf(r.ConsumerChannelDe))
	fmt.Fprintf(tw, "provider received\t%s\n", mystOf(r.ProviderReceived))
	fmt.Fprintf(tw, "hermes fee (%d bps)\t%s\n", r.HermesFeeBps, mystOf(fees))
	check := "exact"
	if new(big.Int).Add(r.ProviderReceived, fees).Cmp(r.ConsumerChannelDe) != 0 {
		check = "MISMATCH"
	}
	fmt.Fprintf(tw, "paid = received + fee\t%s\n", check)
	return tw.Flush()
}

// ProgressTo writes progress lines ("  .. what") to w.
func ProgressTo(w io.Writer) func(string) {
	return func(s string) { fmt.Fprintf(w, "  .. %s\n", s) }
}

// RunDevnet starts a devnet (StartDevnet; progress to out unless
// cfg.Progress is set), writes its network file, tells out how to use it
// (PrintUsage) and runs until ctx ends.
func RunDevnet(ctx context.Context, cfg DevnetConfig, out io.Writer) error {
	fmt.Fprintln(out, "starting devnet")
	if cfg.Progress == nil {
		cfg.Progress = ProgressTo(out)
	}
	d, err := StartDevnet(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	netFile, err := d.WriteNetwork()
	if err != nil {
		return err
	}
	if err := d.PrintUsage(out, netFile); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(out, "stopping devnet")
	return nil
}

// PrintUsage writes what runs in the devnet and how other processes use
// it through its network file netFile (`myst devnet`).
func (d *Devnet) PrintUsage(w io.Writer, netFile string) error {
	dep := d.Chain.Deployment()
	boot := strings.Join(d.BootstrapAddrs(), ",")
	fmt.Fprintf(w, `
devnet running (Ctrl-C to stop)
  data dir:   %s
  chain:      %s (chain id %d)
  token:      %s
  hermes:     %s  api %s
  bootstrap:  %s
  consumer:   %s (registered, channel funded; dev account %d)
  providers:
`, d.DataDir, d.Chain.URL(), dep.ChainID, dep.Token.Hex(), dep.Hermes.Hex(), d.Hermes.URL(), boot, d.ConsumerSigner.Address().Hex(), 8)
	for _, p := range d.Providers {
		pr, _ := p.Proposal()
		fmt.Fprintf(w, "    %s  %s %-12s %s MYST/h  %s MYST/GiB  peer %s\n", p.Address().Hex(), pr.Location.Country,
			pr.Location.IPType, pr.Price.PerHour.MYST(), pr.Price.PerGiB.MYST(), p.P2P.ID())
	}
	_, err := fmt.Fprintf(w, `
use it from other processes (network file %s; each node its own --data-dir):
  myst proposals --network %s
  myst account balance --network %s --identity %s
  myst daemon --network %s --data-dir DIR        (or MYST_NETWORK=%s)
  myst service --network %s --data-dir DIR --location.country DE
  (daemon, service: add --ice.turn-credentials-file %s for the relay's TURN, besides its STUN)
  curl %s/v1/providers/<provider>
  myst demo            (a whole paid session on its own devnet)
`, netFile, netFile, netFile, d.ConsumerSigner.Address().Hex(), netFile, netFile, netFile, d.TURNCredentialsFile(), d.Hermes.URL())
	return err
}
