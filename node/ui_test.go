package node

import (
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestSameConnSeesTheKillSwitch: the dashboard's connection event is
// published again when only the tun-mode state or the kill switch
// changes (a reconnect holding the device, a new exemption), not only
// when bytes or money move.
func TestSameConnSeesTheKillSwitch(t *testing.T) {
	base := func() tequilapi.ConnectionEvent {
		return tequilapi.ConnectionEvent{Connected: true, Status: &tequilapi.ConnectionStatus{
			SessionID: "s", Mode: tequilapi.ModeTun, State: "connected", Running: true,
			KillSwitch: &tequilapi.KillSwitchStatus{Setting: tequilapi.KillSwitchConnection, Active: true, Exemptions: []string{"udp 10.99.0.1:51820"}},
		}}
	}
	if !sameConn(base(), base()) {
		t.Fatal("equal events differ")
	}
	for name, change := range map[string]func(*tequilapi.ConnectionStatus){
		"state":    func(s *tequilapi.ConnectionStatus) { s.State = "reconnecting" },
		"inactive": func(s *tequilapi.ConnectionStatus) { s.KillSwitch.Active = false },
		"setting":  func(s *tequilapi.ConnectionStatus) { s.KillSwitch.Setting = tequilapi.KillSwitchAlways },
		"exemptions": func(s *tequilapi.ConnectionStatus) {
			s.KillSwitch.Exemptions = append(s.KillSwitch.Exemptions, "tcp 10.99.0.1:4001")
		},
		"none":  func(s *tequilapi.ConnectionStatus) { s.KillSwitch = nil },
		"bytes": func(s *tequilapi.ConnectionStatus) { s.RxBytes++ },
	} {
		ev := base()
		change(ev.Status)
		if sameConn(base(), ev) || sameConn(ev, base()) {
			t.Errorf("%s: a changed connection counts as the same; the dashboard would not see it", name)
		}
	}
}
