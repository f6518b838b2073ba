package chain

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// The promise digest, hashlock and consumer/provider channel ids have one
// implementation, in package payments (payments.Promise.Digest,
// payments.Hashlock, payments.ConsumerChannelID, payments.ProviderChannelID);
// the digests below are those only the chain client signs.

// Action tags: ASCII, right-padded with zeros to 32 bytes (Solidity's
// bytes32 string literals). See docs/protocol.md.
var (
	TagRegisterIdentity = tag("myst.RegisterIdentity")
	TagRegisterDeferred = tag("myst.RegisterDeferred")
	TagSetBeneficiary   = tag("myst.SetBeneficiary")
	TagOpenChannel      = tag("myst.OpenChannel")
	TagChannelWithdraw  = tag("myst.ChannelWithdraw")
	TagRequestExit      = tag("myst.ChannelRequestExit")
	TagDecreaseStake    = tag("myst.DecreaseStake")
)

func tag(s string) [32]byte {
	var t [32]byte
	copy(t[:], s)
	return t
}

// u256 is the 32-byte big-endian encoding of v; v must be in [0, 2^256).
func u256(v *big.Int) []byte {
	if v == nil {
		v = new(big.Int)
	}
	return math.U256Bytes(new(big.Int).Set(v))
}

// RegisterDigest is what an identity signs to register (docs/protocol.md).
func RegisterDigest(chainID *big.Int, registry, ident, hermes common.Address, fee *big.Int, beneficiary common.Address) [32]byte {
	return crypto.Keccak256Hash(u256(chainID), registry.Bytes(), TagRegisterIdentity[:], ident.Bytes(), hermes.Bytes(), u256(fee), beneficiary.Bytes())
}

// RegisterDeferredDigest is what an identity signs to register and owe fee
// to the relaying transactor, paid from its first provider settlements.
func RegisterDeferredDigest(chainID *big.Int, registry, ident, hermes common.Address, fee *big.Int, beneficiary common.Address) [32]byte {
	return crypto.Keccak256Hash(u256(chainID), registry.Bytes(), TagRegisterDeferred[:], ident.Bytes(), hermes.Bytes(), u256(fee), beneficiary.Bytes())
}

// OpenChannelDigest is what a registered identity signs to open a channel with another hermes.
func OpenChannelDigest(chainID *big.Int, registry, ident, hermes common.Address, fee *big.Int) [32]byte {
	return crypto.Keccak256Hash(u256(chainID), registry.Bytes(), TagOpenChannel[:], ident.Bytes(), hermes.Bytes(), u256(fee))
}

// BeneficiaryDigest is what an identity signs to change its beneficiary;
// a non-zero fee is paid to the transactor from its channel with hermes.
func BeneficiaryDigest(chainID *big.Int, registry, ident, beneficiary, hermes common.Address, fee *big.Int, nonce uint64) [32]byte {
	return crypto.Keccak256Hash(u256(chainID), registry.Bytes(), TagSetBeneficiary[:], ident.Bytes(), beneficiary.Bytes(), hermes.Bytes(), u256(fee), u256(new(big.Int).SetUint64(nonce)))
}

// WithdrawDigest is what both the consumer and the hermes operator sign for
// a cooperative withdrawal of amount to `to`, plus fee to the transactor.
func WithdrawDigest(chainID *big.Int, channel common.Address, amount *big.Int, to common.Address, fee *big.Int, nonce uint64) [32]byte {
	return crypto.Keccak256Hash(u256(chainID), channel.Bytes(), TagChannelWithdraw[:], u256(amount), to.Bytes(), u256(fee), u256(new(big.Int).SetUint64(nonce)))
}

// RequestExitDigest is what the consumer signs to start a unilateral exit
// (fee goes to the transactor).
func RequestExitDigest(chainID *big.Int, channel common.Address, fee *big.Int, nonce uint64) [32]byte {
	return crypto.Keccak256Hash(u256(chainID), channel.Bytes(), TagRequestExit[:], u256(fee), u256(new(big.Int).SetUint64(nonce)))
}

// DecreaseStakeDigest is what a provider signs to take back amount of its
// stake (fee of it goes to the transactor).
func DecreaseStakeDigest(chainID *big.Int, hermes, provider common.Address, amount, fee *big.Int, nonce uint64) [32]byte {
	return crypto.Keccak256Hash(u256(chainID), hermes.Bytes(), TagDecreaseStake[:], provider.Bytes(), u256(amount), u256(fee), u256(new(big.Int).SetUint64(nonce)))
}

// minimalProxyInitCode is the EIP-1167 creation code of a proxy to impl.
func minimalProxyInitCode(impl common.Address) []byte {
	code := common.FromHex("3d602d80600a3d3981f3363d3d373d3d3d363d73")
	code = append(code, impl.Bytes()...)
	return append(code, common.FromHex("5af43d82803e903d91602b57fd5bf3")...)
}

// ChannelAddress is the CREATE2 address of ident's consumer channel with
// hermes: computable before registration, so the channel can be topped up first.
func ChannelAddress(registry, channelImplementation, ident, hermes common.Address) common.Address {
	salt := crypto.Keccak256Hash(ident.Bytes(), hermes.Bytes())
	return crypto.CreateAddress2(registry, salt, crypto.Keccak256(minimalProxyInitCode(channelImplementation)))
}

// HermesAddress is the CREATE2 address of the Hermes contract of operator.
func HermesAddress(registry, hermesImplementation, operator common.Address) common.Address {
	salt := common.BytesToHash(operator.Bytes())
	return crypto.CreateAddress2(registry, salt, crypto.Keccak256(minimalProxyInitCode(hermesImplementation)))
}

// DevChainConfig is the chain configuration of the embedded dev chain and
// the tests: go-ethereum's all-forks dev config up to Osaka (the rules live
// EVM chains run), without the experimental Bogota/Amsterdam state-gas
// repricing (EIP-8037) that go-ethereum's dev default enables.
func DevChainConfig() *params.ChainConfig {
	c := *params.AllDevChainProtocolChanges
	c.BogotaTime = nil
	c.AmsterdamTime = nil
	return &c
}
