package ice

import (
	"fmt"
	"testing"

	"github.com/openmyst/openmyst/internal/natlab"
)

// TestLabMuxForwardedPort: a consumer behind a symmetric NAT cannot reach
// a provider behind an endpoint-independent router with ICE alone (the
// relay carries that pair without punching, see expectedICEPath; the
// test turns nat/punch off), but it reaches the provider
// directly when the provider's router forwards a port to a Mux announced
// at the router's public address — what a port mapping (nat/portmap) or
// a hand-made forward gives.
func TestLabMuxForwardedPort(t *testing.T) {
	lab := natlab.New(t)
	servers, _ := startLabRelay(t, lab)
	const port = 51821
	for _, tc := range []struct {
		name string
		mux  bool
		want string
	}{{"without-mux", false, PathRelay}, {"with-mux", true, PathDirect}} {
		t.Run(tc.name, func(t *testing.T) {
			cons := lab.Site("mc"+tc.name[:4], natlab.Symmetric)
			prov := lab.Site("mp"+tc.name[:4], natlab.Forwarded, natlab.WithForward(port))
			// ICE alone: punching (which would find a direct pair
			// either way) is off.
			env := []string{childNoPunchEnv + "=1"}
			if tc.mux {
				env = append(env, fmt.Sprintf("%s=%s:%d %s", childMuxEnv, prov.Host.Addr, port, prov.WAN))
			}
			r := labPairLate(t, lab, servers, cons, prov, false, 0, 0, env...)
			t.Logf("path %s (%s/%s)", r.path.Kind, r.path.Local, r.path.Remote)
			if r.path.Kind != tc.want || r.path.Local == CandidatePunched {
				t.Fatalf("path %s (%s/%s), want %s", r.path.Kind, r.path.Local, r.path.Remote, tc.want)
			}
		})
	}
}
