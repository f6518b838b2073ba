package node

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tequilapi"
)

func TestVPNStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, VPNStateFile)
	if st, err := readVPNState(path); st != nil || err != nil {
		t.Fatalf("no file: %v %v, want nil nil", st, err)
	}
	want := &vpnState{
		Request: tequilapi.ConnectRequest{Mode: tequilapi.ModeTun, KillSwitch: tequilapi.KillSwitchAlways, Country: "DE",
			DNS: tequilapi.DNSCustom, DNSServers: []string{"192.0.2.53"}},
		Control:    []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:4001")},
		ICEServers: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")},
		ResolvConf: "/etc/resolv.conf", ResolvSaved: true, ResolvExisted: true, ResolvOrig: []byte("nameserver 192.0.2.1\n"),
	}
	if err := writeVPNState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readVPNState(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi, err)
	}
	for name, body := range map[string]string{
		"not json":     `{`,
		"proxy mode":   `{"request":{"mode":"proxy"}}`,
		"bad request":  `{"request":{"mode":"tun","kill_switch":"never"}}`,
		"port 0":       `{"request":{"mode":"tun"},"control":["198.51.100.1:0"]}`,
		"bad control":  `{"request":{"mode":"tun"},"control":["nowhere"]}`,
		"ice port 0":   `{"request":{"mode":"tun"},"ice_servers":["198.51.100.1:0"]}`,
		"oversized":    `{"request":{"mode":"tun"},"resolv_orig":"` + strings.Repeat("A", maxStateFile) + `"}`,
		"bad resolver": `{"request":{"mode":"tun","dns":"custom","dns_servers":["x"]}}`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if st, err := readVPNState(path); err == nil {
			t.Errorf("%s: read %+v, want an error", name, st)
		}
	}
}

// TestRestoreResolv: the saved resolv.conf is written back byte for
// byte, or removed when there was none.
func TestRestoreResolv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte("nameserver 10.182.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	orig := []byte("# original\nnameserver 192.0.2.53\noptions edns0\n")
	if err := (&vpnState{ResolvConf: p, ResolvSaved: true, ResolvExisted: true, ResolvOrig: orig}).restoreResolv(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(orig) {
		t.Fatalf("restored %q, want %q", b, orig)
	}
	if err := (&vpnState{ResolvConf: p, ResolvSaved: false}).restoreResolv(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(orig) {
		t.Fatalf("an unsaved state changed resolv.conf to %q", b)
	}
	if err := (&vpnState{ResolvConf: p, ResolvSaved: true}).restoreResolv(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("resolv.conf that did not exist before: %v, want removed", err)
	}
}

// TestConnectTunNeedsNetAdmin: without CAP_NET_ADMIN a tun connect is
// refused with ErrNoPrivileges before the consumer starts or anything is
// touched; as root (CI) the test runs itself as user nobody.
func TestConnectTunNeedsNetAdmin(t *testing.T) {
	if testenv.AsNobody(t) {
		return
	}
	state := filepath.Join(t.TempDir(), VPNStateFile)
	api := &ConnectionAPI{
		Consumer: func(context.Context) (*Consumer, error) { t.Fatal("consumer started"); return nil, nil },
		VPN:      VPNConfig{StateFile: state},
	}
	_, err := api.Connect(context.Background(), tequilapi.ConnectRequest{Mode: tequilapi.ModeTun})
	if !errors.Is(err, tequilapi.ErrNoPrivileges) {
		t.Fatalf("err = %v, want ErrNoPrivileges", err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file written without privileges: %v", err)
	}
	if _, err := api.Status(context.Background()); !errors.Is(err, tequilapi.ErrNotConnected) {
		t.Fatalf("status after the refusal: %v", err)
	}
}

// TestVPNDNSSettings: provider and custom DNS save the resolv.conf they
// will replace (custom with its resolvers); system leaves it alone.
func TestVPNDNSSettings(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	orig := []byte("nameserver 192.0.2.53\n")
	if err := os.WriteFile(resolv, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := VPNConfig{ResolvConf: resolv}
	for _, tc := range []struct {
		req     tequilapi.ConnectRequest
		dns     string
		saved   bool
		servers []string
	}{
		// Kill switch off: status then asks no nft (of the host).
		{tequilapi.ConnectRequest{Mode: tequilapi.ModeTun, KillSwitch: tequilapi.KillSwitchOff}, tequilapi.DNSProvider, true, nil},
		{tequilapi.ConnectRequest{Mode: tequilapi.ModeTun, KillSwitch: tequilapi.KillSwitchOff, DNS: tequilapi.DNSSystem}, tequilapi.DNSSystem, false, nil},
		{tequilapi.ConnectRequest{Mode: tequilapi.ModeTun, KillSwitch: tequilapi.KillSwitchOff, DNS: tequilapi.DNSCustom, DNSServers: []string{"192.0.2.77", "2001:db8::53"}},
			tequilapi.DNSCustom, true, []string{"192.0.2.77", "2001:db8::53"}},
	} {
		v, err := newVPNConn(cfg, tc.req, nil, nil, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := v.state(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if v.dns != tc.dns || st.ResolvSaved != tc.saved || tc.saved && string(st.ResolvOrig) != string(orig) {
			t.Errorf("%+v: dns %s saved %v %q", tc.req, v.dns, st.ResolvSaved, st.ResolvOrig)
		}
		var got []string
		for _, s := range v.servers {
			got = append(got, s.String())
		}
		if !reflect.DeepEqual(got, tc.servers) {
			t.Errorf("%+v: servers %v, want %v", tc.req, got, tc.servers)
		}
		var out tequilapi.ConnectionStatus
		v.status(context.Background(), &out)
		if out.DNS != tc.dns || !reflect.DeepEqual(out.DNSServers, tc.servers) || out.KillSwitch.Setting != tequilapi.KillSwitchOff || out.KillSwitch.Active {
			t.Errorf("%+v: status %+v", tc.req, out)
		}
	}
}

// TestVPNStateLeavesResolvedAlone: with systemd-resolved managing
// resolv.conf (a stub resolv.conf and resolvectl installed) a tun
// connection saves no resolv.conf to restore (DNS goes on the TUN link,
// kernel.ResolvedManaged); a plain resolv.conf is saved.
func TestVPNStateLeavesResolvedAlone(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "resolvectl"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	req := tequilapi.ConnectRequest{Mode: tequilapi.ModeTun}
	for content, saved := range map[string]bool{"nameserver 127.0.0.53\noptions edns0\n": false, "nameserver 192.0.2.53\n": true} {
		resolv := filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(resolv, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := newVPNConn(VPNConfig{ResolvConf: resolv}, req, nil, nil, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := v.state(req)
		if err != nil {
			t.Fatal(err)
		}
		if st.ResolvSaved != saved {
			t.Errorf("resolv.conf %q: saved %v, want %v", content, st.ResolvSaved, saved)
		}
	}
}
