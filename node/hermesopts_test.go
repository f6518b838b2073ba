package node

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/hermes"
)

// TestHermesOptionsRegister: the declared flags start at the hermes's
// defaults and set the options they name.
func TestHermesOptionsRegister(t *testing.T) {
	var o HermesOptions
	fs := pflag.NewFlagSet("hermes", pflag.ContinueOnError)
	o.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.ThresholdWei != "1000000000000000000" || o.MinFeeWei != "0" || o.Confirmations != -1 || o.Listen != "127.0.0.1:4060" ||
		o.Limits.SourceRate != hermes.DefaultSourceRate || o.Limits.MaxTracked != hermes.DefaultMaxTracked || o.SettleInterval != 30*time.Second {
		t.Fatalf("defaults %+v", o)
	}
	if o.CommitDelay != 0 || o.CPUSlots != 0 {
		t.Fatalf("commit delay %v, cpu slots %d by default, want 0 (the hermes defaults)", o.CommitDelay, o.CPUSlots)
	}
	if err := fs.Parse([]string{"--hermes.commit-delay", "5ms", "--hermes.cpu-slots", "3", "--hermes.max-batch", "7", "--hermes.db", "postgres://x", "--chain.confirmations", "3", "--tls.cert", "c"}); err != nil {
		t.Fatal(err)
	}
	if o.CommitDelay != 5*time.Millisecond || o.CPUSlots != 3 || o.MaxBatch != 7 || o.DSN != "postgres://x" || o.Confirmations != 3 || o.TLSCert != "c" {
		t.Fatalf("parsed %+v", o)
	}
}

// TestHermesOptionsRefuseLongCommitDelay: a commit delay above
// MaxHermesCommitDelay (or a negative slot count) is refused before
// anything starts; MaxHermesCommitDelay itself and "never wait" pass.
func TestHermesOptionsRefuseLongCommitDelay(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // error substring; "" = accepted
	}{
		{[]string{"--hermes.commit-delay", "101ms"}, "--hermes.commit-delay: 101ms is above 100ms"},
		{[]string{"--hermes.commit-delay", "1s"}, "--hermes.commit-delay"},
		{[]string{"--hermes.cpu-slots", "-1"}, "--hermes.cpu-slots"},
		{[]string{"--hermes.commit-delay", "100ms", "--hermes.cpu-slots", "2"}, ""},
		{[]string{"--hermes.commit-delay", "-1ns"}, ""},
	} {
		var o HermesOptions
		fs := pflag.NewFlagSet("hermes", pflag.ContinueOnError)
		o.Register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		// The accepted cases fail later, at the confirmation depth
		// of a chain client with no deployment; the refusals come first.
		o.Confirmations = -2
		_, err := o.Config(&Chain{Client: &chain.Client{}}, nil)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "--chain.confirmations") {
				t.Fatalf("%v: %v, want only the later --chain.confirmations error", tc.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
