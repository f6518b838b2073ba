package node

import (
	"testing"
	"time"

	"github.com/spf13/pflag"

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
	if err := fs.Parse([]string{"--hermes.max-batch", "7", "--hermes.db", "postgres://x", "--chain.confirmations", "3", "--tls.cert", "c"}); err != nil {
		t.Fatal(err)
	}
	if o.MaxBatch != 7 || o.DSN != "postgres://x" || o.Confirmations != 3 || o.TLSCert != "c" {
		t.Fatalf("parsed %+v", o)
	}
}
