package node

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestDaemonTunResume: a tun-mode session whose control connection is
// lost resumes (session protocol 1.2) over an address of the provider
// that the kill switch did not admit before. In TestDaemonTunNoLeaks'
// topology the hub's providers listen for libp2p on kHubAddr and on
// kHubAlt, an address beyond the consumer's subnet, which the consumer
// reaches through its default route (the tunnel's while it is up) and
// which is refused to it while the session starts: its control
// connection runs to kHubAddr. Then the hub refuses the consumer's TCP
// to kHubAddr's libp2p ports (a reset ends the connection): the resume
// must dial kHubAlt, which the kill switch admits, and routes outside the
// tunnel, only because the session tells it (consumer.Options.
// ControlPath): the provider's known addresses while it resumes, the new
// connection's after. The session (same id, no reconnect) goes on
// through the same tunnel, is paid, and nothing else leaks: the leak
// counters (kHubAlt exempt) stay at zero, and after DELETE the
// namespace is as before. Before the change the resume's dials were
// refused by the kill switch or died in the tunnel (the provider's exit
// refuses its own addresses), and the session ended.
func TestDaemonTunResume(t *testing.T) {
	if labChild() {
		return // a child of another test
	}
	requireTunLab(t, "runs a devnet, two providers and a tun-mode daemon in network namespaces")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	lab := newVPNLabWith(ctx, t, vpnLabOptions{Resume: true})
	api := lab.api
	st, base, probes := lab.connect(ctx, t, tequilapi.KillSwitchConnection)
	defer probes.Stop()
	if st.State != "connected" || st.KillSwitch == nil || !st.KillSwitch.Active {
		t.Fatalf("status after connect: %+v", st)
	}
	ex := strings.Join(st.KillSwitch.Exemptions, ", ")
	if strings.Contains(ex, kHubAlt) {
		t.Fatalf("exemptions %s: the providers' second address is admitted before any resume", ex)
	}
	if err := vpnGet(ctx, lab.cons); err != nil {
		t.Fatalf("GET through the tunnel: %v", err)
	}
	if err := os.WriteFile(filepath.Join(lab.dir, "cut"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	var now tequilapi.ConnectionStatus
	for deadline := time.Now().Add(30 * time.Second); ; {
		now = tequilapi.ConnectionStatus{}
		err := api.Do(ctx, http.MethodGet, "/connection", nil, &now)
		if err == nil && now.Resumes > 0 {
			break
		}
		if err == nil && (now.SessionID != st.SessionID || now.Reconnects > 0) {
			t.Fatalf("the session ended instead of resuming: %+v\ndaemon:\n%s", now, lab.daemon.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no resume (%v, %+v)\nhub:\n%s\ndaemon:\n%s", err, now, lab.hubProc.Output(), lab.daemon.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("control connection cut -> resumed in %s", time.Since(cut).Round(time.Millisecond))
	if now.SessionID != st.SessionID || now.Reconnects != 0 || now.State != "connected" {
		t.Fatalf("after the resume %+v, before %+v: want the same session", now, st)
	}
	ex = strings.Join(now.KillSwitch.Exemptions, ", ")
	if !strings.Contains(ex, "tcp/udp "+kHubAlt+":") {
		t.Errorf("exemptions after the resume %s: want the new control connection on %s", ex, kHubAlt)
	}
	for _, e := range now.KillSwitch.Exemptions {
		for _, ports := range kResumePorts {
			if strings.HasSuffix(e, kHubAddr+":"+strconv.Itoa(ports[0])) {
				t.Errorf("exemption %s: the lost control connection's address is still admitted", e)
			}
		}
	}
	// The session goes on through the same tunnel and is paid.
	if err := vpnGet(ctx, lab.cons); err != nil {
		t.Fatalf("GET through the tunnel after the resume: %v", err)
	}
	spent := now.Spent
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		now = tequilapi.ConnectionStatus{}
		if err := api.Do(ctx, http.MethodGet, "/connection", nil, &now); err == nil && now.Spent != spent && now.SessionID == st.SessionID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing paid after the resume (spent %s): %+v\ndaemon:\n%s", spent, now, lab.daemon.Output())
		}
	}
	time.Sleep(2 * time.Second) // steady state under probes
	lab.finish(ctx, t, api, probes, base, start)
}
