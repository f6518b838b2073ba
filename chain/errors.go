package chain

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/openmyst/openmyst/chain/bindings"
)

// Sentinel errors a *RevertError wraps, one per contract custom error
// family. Test with errors.Is.
var (
	ErrBadSignature              = errors.New("signature does not match the expected signer (wrong key, chain id, contract or fields)")
	ErrBadPreimage               = errors.New("preimage does not hash to the promise hashlock")
	ErrNothingToSettle           = errors.New("cumulative amount is not above what was already settled")
	ErrFeeAboveAmount            = errors.New("fee is above the amount being paid")
	ErrChannelEmpty              = errors.New("channel has no balance")
	ErrAlreadyRegistered         = errors.New("identity is already registered")
	ErrNotRegistered             = errors.New("identity is not registered")
	ErrUnknownHermes             = errors.New("hermes is not registered")
	ErrHermesExists              = errors.New("operator already has a hermes")
	ErrChannelExists             = errors.New("identity already has a channel with this hermes")
	ErrHermesStakeTooLow         = errors.New("hermes stake is below the minimum")
	ErrBadNonce                  = errors.New("nonce is not the next one (replayed or out of order message)")
	ErrExitAlreadyRequested      = errors.New("an exit is already pending")
	ErrExitNotRequested          = errors.New("no exit was requested")
	ErrExitLocked                = errors.New("exit timelock has not passed yet")
	ErrInsufficientHermesBalance = errors.New("hermes has not enough available balance")
	ErrZeroChannelLimit          = errors.New("provider channel has no settlement limit (stake needed)")
	ErrStakeOutOfRange           = errors.New("stake is outside the allowed range")
	ErrFeeTooHigh                = errors.New("hermes fee is above the cap")
	ErrNotOperator               = errors.New("caller is not the hermes operator")
	ErrNotActive                 = errors.New("hermes is not in the required state")
	ErrStillUndercovered         = errors.New("hermes balance still does not cover the stakes")
	ErrAmountTooLarge            = errors.New("amount is too large")
	ErrInsufficientBalance       = errors.New("token balance too low")
	ErrInsufficientAllowance     = errors.New("token allowance too low")
	ErrFaucetDisabled            = errors.New("token faucet is disabled (not a dev deployment)")
	ErrPermit                    = errors.New("permit expired or badly signed")
	ErrZeroAddress               = errors.New("zero address")
	ErrContract                  = errors.New("contract misuse (initialization or creation)")
	// ErrReverted is wrapped by reverts that match no known custom error.
	ErrReverted = errors.New("transaction reverted")
	// ErrTxFailed means a mined transaction failed and its reason could not be recovered.
	ErrTxFailed = errors.New("transaction failed")
)

var sentinelByName = map[string]error{
	"BadSignature":              ErrBadSignature,
	"BadPreimage":               ErrBadPreimage,
	"NothingToSettle":           ErrNothingToSettle,
	"FeeAboveAmount":            ErrFeeAboveAmount,
	"ChannelEmpty":              ErrChannelEmpty,
	"AlreadyRegistered":         ErrAlreadyRegistered,
	"NotRegistered":             ErrNotRegistered,
	"UnknownHermes":             ErrUnknownHermes,
	"HermesExists":              ErrHermesExists,
	"ChannelExists":             ErrChannelExists,
	"HermesStakeTooLow":         ErrHermesStakeTooLow,
	"BadNonce":                  ErrBadNonce,
	"ExitAlreadyRequested":      ErrExitAlreadyRequested,
	"ExitNotRequested":          ErrExitNotRequested,
	"ExitLocked":                ErrExitLocked,
	"InsufficientHermesBalance": ErrInsufficientHermesBalance,
	"ZeroChannelLimit":          ErrZeroChannelLimit,
	"StakeOutOfRange":           ErrStakeOutOfRange,
	"FeeTooHigh":                ErrFeeTooHigh,
	"NotOperator":               ErrNotOperator,
	"NotActive":                 ErrNotActive,
	"StillUndercovered":         ErrStillUndercovered,
	"AmountTooLarge":            ErrAmountTooLarge,
	"InsufficientBalance":       ErrInsufficientBalance,
	"InsufficientAllowance":     ErrInsufficientAllowance,
	"FaucetDisabled":            ErrFaucetDisabled,
	"PermitExpired":             ErrPermit,
	"BadPermitSignature":        ErrPermit,
	"ZeroAddress":               ErrZeroAddress,
	"NotRegistry":               ErrContract,
	"AlreadyInitialized":        ErrContract,
	"NotInitialized":            ErrContract,
	"CreateFailed":              ErrContract,
}

// contractErrors maps 4-byte selectors to the custom errors of all contracts.
var contractErrors = func() map[[4]byte]abi.Error {
	m := map[[4]byte]abi.Error{}
	for _, md := range []interface{ GetAbi() (*abi.ABI, error) }{
		bindings.MystTokenMetaData, bindings.RegistryMetaData, bindings.ConsumerChannelMetaData, bindings.HermesMetaData,
	} {
		a, err := md.GetAbi()
		if err != nil {
			panic(fmt.Sprintf("chain: embedded ABI does not parse: %v", err))
		}
		for _, e := range a.Errors {
			var id [4]byte
			copy(id[:], e.ID[:4])
			m[id] = e
		}
	}
	return m
}()

// RevertError is a decoded contract revert.
type RevertError struct {
	// Op is what the client was doing ("settle consumer promise", ...).
	Op string
	// Name is the Solidity custom error name ("NothingToSettle"), or "Error"
	// for a string reason, or "" when the data was not recognised.
	Name string
	// Args are the decoded error arguments in declaration order.
	Args []any
	// Raw is the revert data.
	Raw []byte

	sentinel error
	abiErr   *abi.Error
}

// Error implements error: "chain: settle consumer promise: reverted NothingToSettle(amount=1, settled=2): cumulative ...".
func (e *RevertError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chain: %s: reverted", e.Op)
	if e.Name != "" {
		b.WriteString(" " + e.Name + "(")
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			if e.abiErr != nil && i < len(e.abiErr.Inputs) {
				b.WriteString(strings.TrimSuffix(e.abiErr.Inputs[i].Name, "_") + "=")
			}
			fmt.Fprint(&b, a)
		}
		b.WriteString(")")
	} else if len(e.Raw) > 0 {
		b.WriteString(" with data " + hexutil.Encode(e.Raw))
	}
	b.WriteString(": " + e.sentinel.Error())
	return b.String()
}

// Unwrap returns the sentinel error (ErrBadPreimage, ...).
func (e *RevertError) Unwrap() error { return e.sentinel }

var errorStringSelector = []byte{0x08, 0xc3, 0x79, 0xa0}

// DecodeRevert turns revert data into a *RevertError for op.
func DecodeRevert(op string, data []byte) *RevertError {
	re := &RevertError{Op: op, Raw: data, sentinel: ErrReverted}
	if len(data) < 4 {
		return re
	}
	var id [4]byte
	copy(id[:], data[:4])
	if e, ok := contractErrors[id]; ok {
		args, err := e.Inputs.Unpack(data[4:])
		if err != nil {
			return re
		}
		re.Name, re.Args, re.abiErr = e.Name, args, &e
		if s, ok := sentinelByName[e.Name]; ok {
			re.sentinel = s
		}
		return re
	}
	if bytes.Equal(data[:4], errorStringSelector) {
		if reason, err := abi.UnpackRevert(data); err == nil {
			re.Name, re.Args = "Error", []any{reason}
		}
	}
	return re
}

// wrapCallError converts an RPC error carrying revert data into a
// *RevertError; other errors are wrapped with op.
func wrapCallError(op string, err error) error {
	if err == nil {
		return nil
	}
	var de rpc.DataError
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			if data, derr := hexutil.Decode(s); derr == nil && len(data) > 0 {
				return DecodeRevert(op, data)
			}
		}
	}
	return fmt.Errorf("chain: %s: %w", op, err)
}
