package chain

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/atomicfile"

	"github.com/openmyst/openmyst/internal/strictjson"
)

// Deployment records where the contracts of one chain live. It is written
// by `myst chain dev` (or a deploy) and read by every command that talks to
// the chain.
type Deployment struct {
	// ChainID is the chain the contracts are deployed on.
	ChainID uint64 `json:"chainId"`
	// Token is the MYST token.
	Token common.Address `json:"token"`
	// Registry is the identity and hermes registry.
	Registry common.Address `json:"registry"`
	// ChannelImplementation is the consumer channel implementation (for ChannelAddress).
	ChannelImplementation common.Address `json:"channelImplementation"`
	// HermesImplementation is the hermes implementation (for HermesAddress).
	HermesImplementation common.Address `json:"hermesImplementation"`
	// Hermes is the default hermes contract, if one was registered at deploy time.
	Hermes common.Address `json:"hermes"`
	// HermesOperator is the operator key address of Hermes.
	HermesOperator common.Address `json:"hermesOperator"`
	// Faucet is true for dev deployments where anyone can mint MYST.
	Faucet bool `json:"faucet"`
	// DeployBlock is the block the registry was deployed in.
	DeployBlock uint64 `json:"deployBlock"`
}

// Validate checks that the required addresses are set.
func (d Deployment) Validate() error {
	if d.ChainID == 0 {
		return errors.New("chain: deployment: chainId is missing or zero")
	}
	for name, a := range map[string]common.Address{
		"token": d.Token, "registry": d.Registry,
		"channelImplementation": d.ChannelImplementation, "hermesImplementation": d.HermesImplementation,
	} {
		if a == (common.Address{}) {
			return fmt.Errorf("chain: deployment: %s is missing or zero", name)
		}
	}
	if (d.Hermes == common.Address{}) != (d.HermesOperator == common.Address{}) {
		return errors.New("chain: deployment: hermes and hermesOperator must be set together")
	}
	return nil
}

// ChannelAddress is the consumer channel of ident with the deployment's default hermes.
func (d Deployment) ChannelAddress(ident common.Address) common.Address {
	return ChannelAddress(d.Registry, d.ChannelImplementation, ident, d.Hermes)
}

// DecodeDeployment parses a deployment JSON strictly: unknown fields,
// missing required fields, trailing data and bad addresses are rejected.
func DecodeDeployment(data []byte) (Deployment, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Deployment{}, fmt.Errorf("chain: deployment: %w", err)
	}
	for _, k := range []string{"chainId", "token", "registry", "channelImplementation", "hermesImplementation", "hermes", "hermesOperator", "faucet", "deployBlock"} {
		if _, ok := raw[k]; !ok {
			return Deployment{}, fmt.Errorf("chain: deployment: field %q is missing", k)
		}
	}
	var d Deployment
	if err := strictjson.Unmarshal(data, &d); err != nil {
		return Deployment{}, fmt.Errorf("chain: deployment: %w", err)
	}
	if err := d.Validate(); err != nil {
		return Deployment{}, err
	}
	return d, nil
}

// LoadDeployment reads and strictly decodes a deployment file.
func LoadDeployment(path string) (Deployment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Deployment{}, fmt.Errorf("chain: read deployment: %w", err)
	}
	d, err := DecodeDeployment(data)
	if err != nil {
		return Deployment{}, fmt.Errorf("%w (file %s)", err, path)
	}
	return d, nil
}

// Save writes the deployment to path atomically (temp file, fsync, rename).
func (d Deployment) Save(path string) error {
	if err := d.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("chain: encode deployment: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("chain: save deployment: %w", err)
	}
	return nil
}

// DevChainIDs are the chain ids of local development chains: 1337 (the
// in-process dev chain, `myst chain dev`, geth --dev) and 31337 (Hardhat,
// Anvil). Devnet shortcuts (the public dev keys, fast gossip timings,
// plain-HTTP hermes URLs) are allowed on these chains only.
var DevChainIDs = []uint64{1337, 31337}

// DevFaucet reports whether d's token faucet is a devnet's: a faucet
// deployment (anyone may mint) on a dev chain. Only there do nodes fund
// channels from it; elsewhere they transfer MYST.
func (d Deployment) DevFaucet() bool { return d.Faucet && IsDevChainID(d.ChainID) }

// IsDevChainID reports whether id is a local development chain's id.
func IsDevChainID(id uint64) bool {
	for _, d := range DevChainIDs {
		if id == d {
			return true
		}
	}
	return false
}
