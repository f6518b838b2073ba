package node

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel/kernel"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// crashedClient leaves in ns what a tun connection killed with -9 leaves:
// the kill switch, the policy rules and a throw route of its routing
// table, resolv.conf pointing at the tunnel; and the state file.
func crashedClient(t *testing.T, ns *netns.NS, dir, setting string) (state, resolv string, orig []byte) {
	t.Helper()
	resolv = filepath.Join(dir, "resolv.conf")
	orig = []byte("# the host's own\nnameserver 192.0.2.53\n")
	if err := os.WriteFile(resolv, []byte("nameserver 10.182.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state = filepath.Join(dir, VPNStateFile)
	control := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:4001")}
	if err := writeVPNState(state, &vpnState{
		Request: tequilapi.ConnectRequest{Mode: tequilapi.ModeTun, KillSwitch: setting},
		Control: control, ResolvConf: resolv, ResolvSaved: true, ResolvExisted: true, ResolvOrig: orig,
	}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Do(func() error {
		return kernel.HoldKillSwitch(context.Background(), kernel.HoldConfig{Direct: append(control, netip.MustParseAddrPort("198.51.100.9:51820"))})
	}); err != nil {
		t.Fatal(err)
	}
	ns.MustRun("ip", "rule", "add", "fwmark", "0x6d7901ce", "table", "main", "pref", "32099")
	ns.MustRun("ip", "rule", "add", "table", "main", "suppress_prefixlength", "0", "pref", "32100")
	ns.MustRun("ip", "rule", "add", "not", "fwmark", "0x6d79", "table", "28025", "pref", "32101")
	ns.MustRun("ip", "route", "add", "throw", "198.51.100.7/32", "table", "28025")
	return state, resolv, orig
}

func routing(ns *netns.NS) string {
	return ns.MustRun("sh", "-c", "ip -4 rule; ip -6 rule; ip route show table 28025; nft list ruleset")
}

// TestRecoverVPN: a daemon starting after a crash cleans up a tun
// connection with the kill switch per connection (rules, routes, kill
// switch gone; resolv.conf restored; state removed) and, with the kill
// switch always, holds the device (only the control destinations
// admitted), restores resolv.conf and tries to resume until DELETE.
func TestRecoverVPN(t *testing.T) {
	testenv.RequireTools(t, "ip", "nft")
	for _, setting := range []string{tequilapi.KillSwitchConnection, tequilapi.KillSwitchAlways} {
		t.Run(setting, func(t *testing.T) {
			ns := netns.New(t, "vrec")
			dir := t.TempDir()
			state, resolv, orig := crashedClient(t, ns, dir, setting)
			if r := routing(ns); !strings.Contains(r, "32101") || !strings.Contains(r, "198.51.100.9") {
				t.Fatalf("crash not simulated:\n%s", r)
			}
			resumed := make(chan struct{}, 16)
			api := &ConnectionAPI{
				Consumer: func(context.Context) (*Consumer, error) {
					resumed <- struct{}{}
					return nil, errors.New("no chain in this test")
				},
				VPN: VPNConfig{StateFile: state, ResolvConf: resolv},
			}
			if err := ns.Do(func() error { return api.Recover(context.Background()) }); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(resolv); string(b) != string(orig) {
				t.Errorf("resolv.conf %q, want the original %q", b, orig)
			}
			r := routing(ns)
			if strings.Contains(r, "32099") || strings.Contains(r, "32100") || strings.Contains(r, "32101") || strings.Contains(r, "throw") {
				t.Errorf("policy routing left:\n%s", r)
			}
			if setting == tequilapi.KillSwitchConnection {
				if strings.Contains(r, "openmyst_killswitch") {
					t.Errorf("kill switch left:\n%s", r)
				}
				if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("state left: %v", err)
				}
				if _, err := api.Status(context.Background()); !errors.Is(err, tequilapi.ErrNotConnected) {
					t.Errorf("status: %v, want not connected", err)
				}
				return
			}
			// always: held, only the control destination admitted.
			if !strings.Contains(r, "openmyst_killswitch") || !strings.Contains(r, "198.51.100.7") || strings.Contains(r, "198.51.100.9") {
				t.Errorf("want the held kill switch admitting only the control destination:\n%s", r)
			}
			select {
			case <-resumed:
			case <-time.After(5 * time.Second):
				t.Fatal("no attempt to resume")
			}
			var st tequilapi.ConnectionStatus
			if err := ns.Do(func() (err error) { st, err = api.Status(context.Background()); return err }); err != nil {
				t.Fatal(err)
			}
			if st.State != stateHeld || st.Mode != tequilapi.ModeTun || st.KillSwitch == nil || !st.KillSwitch.Active ||
				strings.Join(st.KillSwitch.Exemptions, ",") != "tcp/udp 198.51.100.7:4001" {
				t.Errorf("status %+v %+v", st, st.KillSwitch)
			}
			if err := ns.Do(func() error { return api.Disconnect(context.Background()) }); err != nil {
				t.Fatal(err)
			}
			if r := routing(ns); strings.Contains(r, "openmyst_killswitch") {
				t.Errorf("kill switch left after disconnect:\n%s", r)
			}
			if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state left after disconnect: %v", err)
			}
		})
	}
}
