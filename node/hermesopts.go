package node

import (
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/identity"
)

// HermesOptions are a hermes's settings as an operator gives them (`myst
// hermes` binds its flags here): the fields of HermesConfig that take
// plain values, and the ones Config parses and resolves.
type HermesOptions struct {
	HermesConfig
	// DataDir holds the default SQLite store (<DataDir>/hermes/hermes.db)
	// when DSN is empty.
	DataDir string
	// ThresholdWei, MinFeeWei and MaxFeeCapWei are wei amounts as decimal
	// integers: settlement threshold (> 0), lowest consumer transactor fee
	// (>= 0), settlement fee ceiling per gas (> 0; empty: the default).
	ThresholdWei, MinFeeWei, MaxFeeCapWei string
	// Confirmations is the confirmation depth; -1: 0 on dev deployments,
	// DefaultConfirmations otherwise.
	Confirmations int
	// TLSCert and TLSKey are PEM files serving the API over HTTPS (both
	// or neither).
	TLSCert, TLSKey string
}

// DefaultConfirmations is the confirmation depth outside dev deployments
// when none is given.
const DefaultConfirmations = 12

// Config checks the options and returns the hermes configuration on c
// signed by operator (see HermesOperator); it creates the default store
// directory.
func (o HermesOptions) Config(c *Chain, operator identity.Signer) (HermesConfig, error) {
	cfg := o.HermesConfig
	cfg.Chain, cfg.Hermes, cfg.Operator = c.Client, c.Hermes, operator
	var err error
	if cfg.SettleThreshold, err = parseWei("--hermes.settle-threshold", o.ThresholdWei, false); err != nil {
		return cfg, err
	}
	if cfg.MinConsumerFee, err = parseWei("--hermes.min-consumer-fee", o.MinFeeWei, true); err != nil {
		return cfg, err
	}
	if o.MaxFeeCapWei != "" {
		if cfg.TxMaxFeeCap, err = parseWei("--chain.max-fee-cap", o.MaxFeeCapWei, false); err != nil {
			return cfg, err
		}
	}
	if cfg.Confirmations, err = ConfirmationsFor(o.Confirmations, DevKeysAllowed(c.Client.Deployment()) == nil); err != nil {
		return cfg, err
	}
	if cfg.MaxUnrevealed == 0 {
		cfg.MaxUnrevealed = -1 // an operator's 0 is no limit
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return cfg, errors.New("--tls.cert and --tls.key go together")
	}
	if o.TLSCert != "" {
		cf, err := hermes.LoadCertFiles(o.TLSCert, o.TLSKey, cfg.Log)
		if err != nil {
			return cfg, err
		}
		cfg.TLS = cf.TLSConfig()
	}
	if cfg.DSN == "" {
		dir := filepath.Join(o.DataDir, "hermes")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return cfg, fmt.Errorf("create %s: %w", dir, err)
		}
		cfg.DSN = filepath.Join(dir, "hermes.db")
	}
	return cfg, nil
}

// parseWei parses a decimal wei amount; negative amounts are refused, zero
// only when zeroOK.
func parseWei(flag, s string, zeroOK bool) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || (!zeroOK && v.Sign() == 0) {
		what := "a positive wei amount"
		if zeroOK {
			what = "a wei amount"
		}
		return nil, fmt.Errorf("%s: %q is not %s", flag, s, what)
	}
	return v, nil
}

// HermesDevOperator is the operator of a dev deployment's hermes, whose
// key is public; outside dev deployments it is an error to have none.
func HermesDevOperator(c *Chain) (identity.Signer, error) {
	if err := DevKeysAllowed(c.Client.Deployment()); err != nil {
		return nil, fmt.Errorf("--hermes.operator is required outside dev chains: %w", err)
	}
	return identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount)), nil
}

// ConfirmationsFor resolves a confirmation depth option (-1: 0 on dev
// deployments, DefaultConfirmations otherwise).
func ConfirmationsFor(flag int, dev bool) (uint64, error) {
	switch {
	case flag >= 0:
		return uint64(flag), nil
	case flag == -1 && dev:
		return 0, nil
	case flag == -1:
		return DefaultConfirmations, nil
	}
	return 0, fmt.Errorf("--chain.confirmations: %d is not a block count (or -1)", flag)
}

// RedactDSN hides a password in a postgres:// DSN for printing.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return dsn
}
