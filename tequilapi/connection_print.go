package tequilapi

import (
	"fmt"
	"io"
	"math/big"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openmyst/openmyst/money"
)

// Connected is the one-line answer to a connect: provider, path and the
// local proxy, or in tun mode the interface, kill switch and DNS.
func (s ConnectionStatus) Connected() string {
	if s.Mode != ModeTun {
		return fmt.Sprintf("connected to %s (%s) over the %s path; SOCKS5 proxy on %s", s.Provider, s.Country, s.Path, s.SOCKS)
	}
	ks := "no kill switch"
	if s.KillSwitch != nil && s.KillSwitch.Setting != KillSwitchOff {
		ks = "kill switch " + s.KillSwitch.Setting
	}
	return fmt.Sprintf("connected to %s (%s) over the %s path: the whole device through %s, %s, DNS %s; `myst disconnect` ends it",
		s.Provider, s.Country, s.Path, s.Interface, ks, s.DNS)
}

// Print writes the status as a table (`myst status`): state, provider,
// path, bytes, spent and rate in MYST, the public address through the
// tunnel (when the provider told it) with its check, and in tun mode the interface,
// DNS and kill switch with its exemptions.
func (s ConnectionStatus) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	state := "connected"
	if !s.Running {
		state = "ended " + s.Error
	}
	if s.State != "" && s.State != "connected" {
		state = s.State
		if s.Error != "" {
			state += " (" + s.Error + ")"
		}
	}
	wei := func(v string) string {
		if n, ok := new(big.Int).SetString(v, 10); ok {
			return money.FormatMYST(n) + " MYST"
		}
		return v
	}
	if s.Mode == ModeTun {
		fmt.Fprintf(tw, "mode\ttun (%s, endpoint %s)\ndns\t%s %s\n", s.Interface, s.Endpoint, s.DNS, strings.Join(s.DNSServers, " "))
		if k := s.KillSwitch; k != nil {
			fmt.Fprintf(tw, "kill switch\t%s, active %v, exempt: %s\n", k.Setting, k.Active, strings.Join(k.Exemptions, ", "))
		}
	}
	fmt.Fprintf(tw, "state\t%s\nprovider\t%s (%s)\npath\t%s\nsocks5\t%s\nduration\t%s\nbytes\t%d down, %d up\nspent\t%s\nrate\t%s per hour\n",
		state, s.Provider, s.Country, s.Path, s.SOCKS, (time.Duration(s.DurationSeconds * float64(time.Second))).Round(time.Second),
		s.RxBytes, s.TxBytes, wei(s.Spent), wei(s.RatePerHour))
	if s.PublicIP != "" {
		fmt.Fprintf(tw, "public ip\t%s (%s)\n", s.PublicIP, s.PublicIPCheck)
	}
	if s.PublicIPSeen != "" {
		fmt.Fprintf(tw, "seen by stun\t%s\n", s.PublicIPSeen)
	}
	return tw.Flush()
}
