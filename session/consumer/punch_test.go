package consumer

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/openmyst/openmyst/p2p/sessionproto"
)

// TestOffersPunch: punch parameters go only on streams newer than
// protocol 1.1, whose providers decode offers strictly and would refuse
// the whole request.
func TestOffersPunch(t *testing.T) {
	for proto, want := range map[protocol.ID]bool{
		sessionproto.ProtocolID:   false,
		sessionproto.ProtocolICE:  false,
		"":                        false,
		"/openmyst/session/1.2.0": true,
	} {
		if got := OffersPunch(proto); got != want {
			t.Errorf("%q: %v, want %v", proto, got, want)
		}
	}
}
