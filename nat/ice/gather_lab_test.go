package ice

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
)

// TestLabGatherRelayGrace: a side whose UDP is blocked gets its TURN/TCP
// relay candidate at once, and its UDP STUN requests are never answered.
// Its Gather must end a short grace after the relay candidate, not at the
// gather timeout; a side whose UDP works still gets its server-reflexive
// candidate and its punch mapping in the same offer.
func TestLabGatherRelayGrace(t *testing.T) {
	lab := natlab.New(t)
	servers, _ := startLabRelay(t, lab)
	sv, _ := json.Marshal(servers)
	const gatherTimeout = 8 * time.Second
	for _, k := range []natlab.Kind{natlab.UDPBlocked, natlab.Symmetric} {
		t.Run(k.String(), func(t *testing.T) {
			site := lab.Site("g"+k.String()[:3], k)
			c := natlab.StartChild(t, site.Host.NS, childServersEnv+"="+string(sv), childGatherTimeoutEnv+"="+gatherTimeout.String(), childRoleEnv+"=consumer")
			defer c.Stop()
			us, err := strconv.ParseInt(c.Expect(t, "GATHERED", 2*gatherTimeout), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Duration(us) * time.Microsecond
			raw, err := base64.StdEncoding.DecodeString(c.Expect(t, "OFFER", time.Second))
			if err != nil {
				t.Fatal(err)
			}
			var o Offer
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatal(err)
			}
			has := func(typ string) bool {
				for _, c := range o.Candidates {
					if strings.Contains(c, " typ "+typ) {
						return true
					}
				}
				return false
			}
			t.Logf("gathered in %v: %d candidates, punch %v", took.Round(time.Millisecond), len(o.Candidates), o.Punch)
			if !has("relay") {
				t.Fatalf("no relayed candidate in %v", o.Candidates)
			}
			if took >= gatherTimeout/2 {
				t.Errorf("gathering took %v, not ended by the relay grace (gather timeout %v)", took, gatherTimeout)
			}
			if k != natlab.UDPBlocked && (!has("srflx") || o.Punch == nil) {
				t.Errorf("UDP works, but the offer lacks the server-reflexive candidate or the punch mapping: %v, punch %v", o.Candidates, o.Punch)
			}
		})
	}
}
