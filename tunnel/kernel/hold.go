package kernel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ErrNoNetAdmin is returned by CheckNetAdmin when the process lacks
// CAP_NET_ADMIN, which the TUN, routes, rules and kill switch need.
var ErrNoNetAdmin = errors.New("kernel mode needs CAP_NET_ADMIN (run as root or grant the capability)")

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets.
const capNetAdmin = 12

// CheckNetAdmin reports ErrNoNetAdmin unless the process's effective
// capabilities include CAP_NET_ADMIN (read from /proc/self/status).
func CheckNetAdmin() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	return checkCapEff(string(b))
}

func checkCapEff(status string) error {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return fmt.Errorf("parse CapEff %q: %w", strings.TrimSpace(v), err)
		}
		if caps&(1<<capNetAdmin) == 0 {
			return ErrNoNetAdmin
		}
		return nil
	}
	return errors.New("no CapEff line in /proc/self/status")
}

// HoldConfig configures HoldKillSwitch and RemoveClient.
type HoldConfig struct {
	// Table is the kill switch table (DefaultKillSwitchTable if empty).
	Table string
	// Interface is the TUN the kill switch admits
	// (DefaultClientInterface if empty).
	Interface string
	// FwMark numbers the policy routing table (DefaultFwMark if 0).
	FwMark uint32
	// Direct are the TCP/UDP destinations admitted outside a tunnel.
	Direct []netip.AddrPort
	// ICEChecks admits UDP from and to this host's ICE sockets (marked
	// SocketMark), to and from any address, while a session's ICE checks
	// run (see Client.AdmitChecks).
	ICEChecks bool
	// PortMapGateway admits the port-mapping client's sockets (marked
	// PortMapMark) to the home router (see ClientConfig.PortMapGateway).
	PortMapGateway netip.Addr
}

func (h *HoldConfig) defaults() error {
	h.Table = cmp.Or(h.Table, DefaultKillSwitchTable)
	h.Interface = cmp.Or(h.Interface, DefaultClientInterface)
	h.FwMark = cmp.Or(h.FwMark, DefaultFwMark)
	if err := validTableName(h.Table); err != nil {
		return err
	}
	return validIfName(h.Interface)
}

// HoldKillSwitch loads (or replaces, in one nftables transaction) a kill
// switch with no tunnel endpoint: nothing leaves the host but loopback,
// the TUN (when one comes up), DHCP, IPv6 neighbour discovery and TCP/UDP
// to exactly the Direct destinations. A consumer holds it while no tunnel
// is up (before the first session, between sessions, after a restart);
// Connect replaces it in one transaction when a tunnel comes up.
func HoldKillSwitch(ctx context.Context, h HoldConfig) error {
	if err := h.defaults(); err != nil {
		return err
	}
	if err := checkTools("nft"); err != nil {
		return err
	}
	ks, err := killSwitchRuleset{Table: h.Table, Iface: h.Interface, Hold: true, Direct: h.Direct, ICEChecks: h.ICEChecks, PortMapGateway: h.PortMapGateway}.render()
	if err != nil {
		return err
	}
	if err := nftLoad(ctx, ks); err != nil {
		return fmt.Errorf("hold kill switch: %w", err)
	}
	return nil
}

// KillSwitchUp reports whether the kill switch table exists.
func KillSwitchUp(ctx context.Context, table string) (bool, error) {
	if table == "" {
		table = DefaultKillSwitchTable
	}
	out, err := run(ctx, "", "nft", "list", "tables", "inet")
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "table inet "+table {
			return true, nil
		}
	}
	return false, nil
}

// RemovePolicyRouting removes what a client killed without Close left in
// the routing configuration (its TUN and device routes went with the
// process): the two policy rules per family and the throw routes of its
// routing table. The kill switch is left alone (HoldKillSwitch keeps the
// host fail-closed meanwhile; RemoveKillSwitch opens it).
func RemovePolicyRouting(ctx context.Context, h HoldConfig) error {
	if err := h.defaults(); err != nil {
		return err
	}
	table := strconv.FormatUint(uint64(h.FwMark), 10)
	mark := "0x" + strconv.FormatUint(uint64(h.FwMark), 16)
	var errs []error
	for _, fam := range []string{"-4", "-6"} {
		for _, spec := range policyRules(mark, table) {
			for i := 0; i < 16 && ip(ctx, append([]string{fam, "rule", "del"}, spec...)...) == nil; i++ {
			}
		}
		out, err := run(ctx, "", "ip", fam, "route", "show", "table", table)
		if err != nil {
			continue // no such table: nothing left
		}
		if strings.TrimSpace(out) != "" {
			if err := ip(ctx, fam, "route", "flush", "table", table); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
