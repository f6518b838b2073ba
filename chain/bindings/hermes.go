// Code generated - DO NOT EDIT.
// This file is a generated binding and any manual changes will be lost.

package bindings

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"
)

// Reference imports to suppress errors if they are not otherwise used.
var (
	_ = errors.New
	_ = big.NewInt
	_ = strings.NewReader
	_ = ethereum.NotFound
	_ = bind.Bind
	_ = common.Big1
	_ = types.BloomLookup
	_ = event.NewSubscription
	_ = abi.ConvertType
	_ = time.Tick
	_ = context.Background
)

// HermesMetaData contains all meta data concerning the Hermes contract.
var HermesMetaData = &bind.MetaData{
	ABI: "[{\"inputs\":[{\"internalType\":\"address\",\"name\":\"registry_\",\"type\":\"address\"},{\"internalType\":\"contractIERC20Min\",\"name\":\"token_\",\"type\":\"address\"},{\"internalType\":\"uint64\",\"name\":\"feeNoticeDelay_\",\"type\":\"uint64\"}],\"stateMutability\":\"nonpayable\",\"type\":\"constructor\"},{\"inputs\":[],\"name\":\"AlreadyInitialized\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"AmountTooLarge\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"got\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"want\",\"type\":\"uint256\"}],\"name\":\"BadNonce\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"BadPreimage\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"BadSignature\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"FeeAboveAmount\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint16\",\"name\":\"feeBps\",\"type\":\"uint16\"},{\"internalType\":\"uint16\",\"name\":\"max\",\"type\":\"uint16\"}],\"name\":\"FeeTooHigh\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"available\",\"type\":\"uint256\"}],\"name\":\"InsufficientHermesBalance\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"enumHermes.Status\",\"name\":\"status\",\"type\":\"uint8\"}],\"name\":\"NotActive\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"NotOperator\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"identity\",\"type\":\"address\"}],\"name\":\"NotRegistered\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"NotRegistry\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"settled\",\"type\":\"uint256\"}],\"name\":\"NothingToSettle\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"stake\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"min\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"max\",\"type\":\"uint256\"}],\"name\":\"StakeOutOfRange\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"balance\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"required\",\"type\":\"uint256\"}],\"name\":\"StillUndercovered\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroAddress\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroChannelLimit\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":false,\"internalType\":\"uint16\",\"name\":\"feeBps\",\"type\":\"uint16\"},{\"indexed\":false,\"internalType\":\"uint40\",\"name\":\"effectiveAt\",\"type\":\"uint40\"}],\"name\":\"FeeAnnounced\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"balance\",\"type\":\"uint256\"}],\"name\":\"PenaltyResolved\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"balance\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"required\",\"type\":\"uint256\"}],\"name\":\"PenaltyStarted\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"channelId\",\"type\":\"bytes32\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"paid\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"hermesFee\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"bytes32\",\"name\":\"hashlock\",\"type\":\"bytes32\"}],\"name\":\"ProviderSettled\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"stake\",\"type\":\"uint256\"}],\"name\":\"StakeChanged\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"Withdrawn\",\"type\":\"event\"},{\"inputs\":[],\"name\":\"MAX_FEE_BPS\",\"outputs\":[{\"internalType\":\"uint16\",\"name\":\"\",\"type\":\"uint16\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"availableBalance\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"}],\"name\":\"channel\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"settled\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"stake\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"nonce\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"}],\"name\":\"channelId\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"uint96\",\"name\":\"amount\",\"type\":\"uint96\"},{\"internalType\":\"uint256\",\"name\":\"fee_\",\"type\":\"uint256\"},{\"internalType\":\"uint32\",\"name\":\"nonce\",\"type\":\"uint32\"},{\"internalType\":\"bytes\",\"name\":\"signature\",\"type\":\"bytes\"}],\"name\":\"decreaseStake\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"fee_\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"nonce\",\"type\":\"uint256\"}],\"name\":\"decreaseStakeDigest\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"fee\",\"outputs\":[{\"internalType\":\"uint16\",\"name\":\"\",\"type\":\"uint16\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"feeEffectiveAt\",\"outputs\":[{\"internalType\":\"uint40\",\"name\":\"\",\"type\":\"uint40\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"feeNoticeDelay\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"hermesStake\",\"outputs\":[{\"internalType\":\"uint128\",\"name\":\"\",\"type\":\"uint128\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"uint96\",\"name\":\"amount\",\"type\":\"uint96\"}],\"name\":\"increaseStake\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"operator_\",\"type\":\"address\"},{\"internalType\":\"uint128\",\"name\":\"stake\",\"type\":\"uint128\"},{\"internalType\":\"uint16\",\"name\":\"feeBps_\",\"type\":\"uint16\"},{\"internalType\":\"uint128\",\"name\":\"minStake\",\"type\":\"uint128\"},{\"internalType\":\"uint128\",\"name\":\"maxStake\",\"type\":\"uint128\"}],\"name\":\"initialize\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"maxChannelStake\",\"outputs\":[{\"internalType\":\"uint128\",\"name\":\"\",\"type\":\"uint128\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"minChannelStake\",\"outputs\":[{\"internalType\":\"uint128\",\"name\":\"\",\"type\":\"uint128\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"operator\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"pendingFeeBps\",\"outputs\":[{\"internalType\":\"uint16\",\"name\":\"\",\"type\":\"uint16\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"registry\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"resolvePenalty\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint16\",\"name\":\"newFeeBps\",\"type\":\"uint16\"}],\"name\":\"setFee\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"provider\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"fee_\",\"type\":\"uint256\"},{\"internalType\":\"bytes32\",\"name\":\"hashlock\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"preimage\",\"type\":\"bytes32\"},{\"internalType\":\"bytes\",\"name\":\"signature\",\"type\":\"bytes\"}],\"name\":\"settlePromise\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"status\",\"outputs\":[{\"internalType\":\"enumHermes.Status\",\"name\":\"\",\"type\":\"uint8\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"token\",\"outputs\":[{\"internalType\":\"contractIERC20Min\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"totalProviderStake\",\"outputs\":[{\"internalType\":\"uint128\",\"name\":\"\",\"type\":\"uint128\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"withdraw\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"}]",
}

// HermesABI is the input ABI used to generate the binding from.
// Deprecated: Use HermesMetaData.ABI instead.
var HermesABI = HermesMetaData.ABI

// Hermes is an auto generated Go binding around an Ethereum contract.
type Hermes struct {
	HermesCaller     // Read-only binding to the contract
	HermesTransactor // Write-only binding to the contract
	HermesFilterer   // Log filterer for contract events
}

// HermesCaller is an auto generated read-only Go binding around an Ethereum contract.
type HermesCaller struct {
	contract *bind.BoundContract // Generic contract wrapper for the low level calls
}

// HermesTransactor is an auto generated write-only Go binding around an Ethereum contract.
type HermesTransactor struct {
	contract *bind.BoundContract // Generic contract wrapper for the low level calls
}

// HermesFilterer is an auto generated log filtering Go binding around an Ethereum contract events.
type HermesFilterer struct {
	contract *bind.BoundContract // Generic contract wrapper for the low level calls
}

// HermesSession is an auto generated Go binding around an Ethereum contract,
// with pre-set call and transact options.
type HermesSession struct {
	Contract     *Hermes           // Generic contract binding to set the session for
	CallOpts     bind.CallOpts     // Call options to use throughout this session
	TransactOpts bind.TransactOpts // Transaction auth options to use throughout this session
}

// HermesCallerSession is an auto generated read-only Go binding around an Ethereum contract,
// with pre-set call options.
type HermesCallerSession struct {
	Contract *HermesCaller // Generic contract caller binding to set the session for
	CallOpts bind.CallOpts // Call options to use throughout this session
}

// HermesTransactorSession is an auto generated write-only Go binding around an Ethereum contract,
// with pre-set transact options.
type HermesTransactorSession struct {
	Contract     *HermesTransactor // Generic contract transactor binding to set the session for
	TransactOpts bind.TransactOpts // Transaction auth options to use throughout this session
}

// HermesRaw is an auto generated low-level Go binding around an Ethereum contract.
type HermesRaw struct {
	Contract *Hermes // Generic contract binding to access the raw methods on
}

// HermesCallerRaw is an auto generated low-level read-only Go binding around an Ethereum contract.
type HermesCallerRaw struct {
	Contract *HermesCaller // Generic read-only contract binding to access the raw methods on
}

// HermesTransactorRaw is an auto generated low-level write-only Go binding around an Ethereum contract.
type HermesTransactorRaw struct {
	Contract *HermesTransactor // Generic write-only contract binding to access the raw methods on
}

// NewHermes creates a new instance of Hermes, bound to a specific deployed contract.
func NewHermes(address common.Address, backend bind.ContractBackend) (*Hermes, error) {
	contract, err := bindHermes(address, backend, backend, backend)
	if err != nil {
		return nil, err
	}
	return &Hermes{HermesCaller: HermesCaller{contract: contract}, HermesTransactor: HermesTransactor{contract: contract}, HermesFilterer: HermesFilterer{contract: contract}}, nil
}

// NewHermesCaller creates a new read-only instance of Hermes, bound to a specific deployed contract.
func NewHermesCaller(address common.Address, caller bind.ContractCaller) (*HermesCaller, error) {
	contract, err := bindHermes(address, caller, nil, nil)
	if err != nil {
		return nil, err
	}
	return &HermesCaller{contract: contract}, nil
}

// NewHermesTransactor creates a new write-only instance of Hermes, bound to a specific deployed contract.
func NewHermesTransactor(address common.Address, transactor bind.ContractTransactor) (*HermesTransactor, error) {
	contract, err := bindHermes(address, nil, transactor, nil)
	if err != nil {
		return nil, err
	}
	return &HermesTransactor{contract: contract}, nil
}

// NewHermesFilterer creates a new log filterer instance of Hermes, bound to a specific deployed contract.
func NewHermesFilterer(address common.Address, filterer bind.ContractFilterer) (*HermesFilterer, error) {
	contract, err := bindHermes(address, nil, nil, filterer)
	if err != nil {
		return nil, err
	}
	return &HermesFilterer{contract: contract}, nil
}

// bindHermes binds a generic wrapper to an already deployed contract.
func bindHermes(address common.Address, caller bind.ContractCaller, transactor bind.ContractTransactor, filterer bind.ContractFilterer) (*bind.BoundContract, error) {
	parsed, err := HermesMetaData.GetAbi()
	if err != nil {
		return nil, err
	}
	return bind.NewBoundContract(address, *parsed, caller, transactor, filterer), nil
}

// Call invokes the (constant) contract method with params as input values and
// sets the output to result. The result type might be a single field for simple
// returns, a slice of interfaces for anonymous returns and a struct for named
// returns.
func (_Hermes *HermesRaw) Call(opts *bind.CallOpts, result *[]interface{}, method string, params ...interface{}) error {
	return _Hermes.Contract.HermesCaller.contract.Call(opts, result, method, params...)
}

// Transfer initiates a plain transaction to move funds to the contract, calling
// its default method if one is available.
func (_Hermes *HermesRaw) Transfer(opts *bind.TransactOpts) (*types.Transaction, error) {
	return _Hermes.Contract.HermesTransactor.contract.Transfer(opts)
}

// Transact invokes the (paid) contract method with params as input values.
func (_Hermes *HermesRaw) Transact(opts *bind.TransactOpts, method string, params ...interface{}) (*types.Transaction, error) {
	return _Hermes.Contract.HermesTransactor.contract.Transact(opts, method, params...)
}

// Call invokes the (constant) contract method with params as input values and
// sets the output to result. The result type might be a single field for simple
// returns, a slice of interfaces for anonymous returns and a struct for named
// returns.
func (_Hermes *HermesCallerRaw) Call(opts *bind.CallOpts, result *[]interface{}, method string, params ...interface{}) error {
	return _Hermes.Contract.contract.Call(opts, result, method, params...)
}

// Transfer initiates a plain transaction to move funds to the contract, calling
// its default method if one is available.
func (_Hermes *HermesTransactorRaw) Transfer(opts *bind.TransactOpts) (*types.Transaction, error) {
	return _Hermes.Contract.contract.Transfer(opts)
}

// Transact invokes the (paid) contract method with params as input values.
func (_Hermes *HermesTransactorRaw) Transact(opts *bind.TransactOpts, method string, params ...interface{}) (*types.Transaction, error) {
	return _Hermes.Contract.contract.Transact(opts, method, params...)
}

// MAXFEEBPS is a free data retrieval call binding the contract method 0xd55be8c6.
//
// Solidity: function MAX_FEE_BPS() view returns(uint16)
func (_Hermes *HermesCaller) MAXFEEBPS(opts *bind.CallOpts) (uint16, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "MAX_FEE_BPS")

	if err != nil {
		return *new(uint16), err
	}

	out0 := *abi.ConvertType(out[0], new(uint16)).(*uint16)

	return out0, err

}

// MAXFEEBPS is a free data retrieval call binding the contract method 0xd55be8c6.
//
// Solidity: function MAX_FEE_BPS() view returns(uint16)
func (_Hermes *HermesSession) MAXFEEBPS() (uint16, error) {
	return _Hermes.Contract.MAXFEEBPS(&_Hermes.CallOpts)
}

// MAXFEEBPS is a free data retrieval call binding the contract method 0xd55be8c6.
//
// Solidity: function MAX_FEE_BPS() view returns(uint16)
func (_Hermes *HermesCallerSession) MAXFEEBPS() (uint16, error) {
	return _Hermes.Contract.MAXFEEBPS(&_Hermes.CallOpts)
}

// AvailableBalance is a free data retrieval call binding the contract method 0xab2f0e51.
//
// Solidity: function availableBalance() view returns(uint256)
func (_Hermes *HermesCaller) AvailableBalance(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "availableBalance")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// AvailableBalance is a free data retrieval call binding the contract method 0xab2f0e51.
//
// Solidity: function availableBalance() view returns(uint256)
func (_Hermes *HermesSession) AvailableBalance() (*big.Int, error) {
	return _Hermes.Contract.AvailableBalance(&_Hermes.CallOpts)
}

// AvailableBalance is a free data retrieval call binding the contract method 0xab2f0e51.
//
// Solidity: function availableBalance() view returns(uint256)
func (_Hermes *HermesCallerSession) AvailableBalance() (*big.Int, error) {
	return _Hermes.Contract.AvailableBalance(&_Hermes.CallOpts)
}

// Channel is a free data retrieval call binding the contract method 0x345041c6.
//
// Solidity: function channel(address provider) view returns(uint256 settled, uint256 stake, uint256 nonce)
func (_Hermes *HermesCaller) Channel(opts *bind.CallOpts, provider common.Address) (struct {
	Settled *big.Int
	Stake   *big.Int
	Nonce   *big.Int
}, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "channel", provider)

	outstruct := new(struct {
		Settled *big.Int
		Stake   *big.Int
		Nonce   *big.Int
	})
	if err != nil {
		return *outstruct, err
	}

	outstruct.Settled = *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)
	outstruct.Stake = *abi.ConvertType(out[1], new(*big.Int)).(**big.Int)
	outstruct.Nonce = *abi.ConvertType(out[2], new(*big.Int)).(**big.Int)

	return *outstruct, err

}

// Channel is a free data retrieval call binding the contract method 0x345041c6.
//
// Solidity: function channel(address provider) view returns(uint256 settled, uint256 stake, uint256 nonce)
func (_Hermes *HermesSession) Channel(provider common.Address) (struct {
	Settled *big.Int
	Stake   *big.Int
	Nonce   *big.Int
}, error) {
	return _Hermes.Contract.Channel(&_Hermes.CallOpts, provider)
}

// Channel is a free data retrieval call binding the contract method 0x345041c6.
//
// Solidity: function channel(address provider) view returns(uint256 settled, uint256 stake, uint256 nonce)
func (_Hermes *HermesCallerSession) Channel(provider common.Address) (struct {
	Settled *big.Int
	Stake   *big.Int
	Nonce   *big.Int
}, error) {
	return _Hermes.Contract.Channel(&_Hermes.CallOpts, provider)
}

// ChannelId is a free data retrieval call binding the contract method 0xa9999a5b.
//
// Solidity: function channelId(address provider) view returns(bytes32)
func (_Hermes *HermesCaller) ChannelId(opts *bind.CallOpts, provider common.Address) ([32]byte, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "channelId", provider)

	if err != nil {
		return *new([32]byte), err
	}

	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)

	return out0, err

}

// ChannelId is a free data retrieval call binding the contract method 0xa9999a5b.
//
// Solidity: function channelId(address provider) view returns(bytes32)
func (_Hermes *HermesSession) ChannelId(provider common.Address) ([32]byte, error) {
	return _Hermes.Contract.ChannelId(&_Hermes.CallOpts, provider)
}

// ChannelId is a free data retrieval call binding the contract method 0xa9999a5b.
//
// Solidity: function channelId(address provider) view returns(bytes32)
func (_Hermes *HermesCallerSession) ChannelId(provider common.Address) ([32]byte, error) {
	return _Hermes.Contract.ChannelId(&_Hermes.CallOpts, provider)
}

// DecreaseStakeDigest is a free data retrieval call binding the contract method 0x947c76aa.
//
// Solidity: function decreaseStakeDigest(address provider, uint256 amount, uint256 fee_, uint256 nonce) view returns(bytes32)
func (_Hermes *HermesCaller) DecreaseStakeDigest(opts *bind.CallOpts, provider common.Address, amount *big.Int, fee_ *big.Int, nonce *big.Int) ([32]byte, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "decreaseStakeDigest", provider, amount, fee_, nonce)

	if err != nil {
		return *new([32]byte), err
	}

	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)

	return out0, err

}

// DecreaseStakeDigest is a free data retrieval call binding the contract method 0x947c76aa.
//
// Solidity: function decreaseStakeDigest(address provider, uint256 amount, uint256 fee_, uint256 nonce) view returns(bytes32)
func (_Hermes *HermesSession) DecreaseStakeDigest(provider common.Address, amount *big.Int, fee_ *big.Int, nonce *big.Int) ([32]byte, error) {
	return _Hermes.Contract.DecreaseStakeDigest(&_Hermes.CallOpts, provider, amount, fee_, nonce)
}

// DecreaseStakeDigest is a free data retrieval call binding the contract method 0x947c76aa.
//
// Solidity: function decreaseStakeDigest(address provider, uint256 amount, uint256 fee_, uint256 nonce) view returns(bytes32)
func (_Hermes *HermesCallerSession) DecreaseStakeDigest(provider common.Address, amount *big.Int, fee_ *big.Int, nonce *big.Int) ([32]byte, error) {
	return _Hermes.Contract.DecreaseStakeDigest(&_Hermes.CallOpts, provider, amount, fee_, nonce)
}

// Fee is a free data retrieval call binding the contract method 0xddca3f43.
//
// Solidity: function fee() view returns(uint16)
func (_Hermes *HermesCaller) Fee(opts *bind.CallOpts) (uint16, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "fee")

	if err != nil {
		return *new(uint16), err
	}

	out0 := *abi.ConvertType(out[0], new(uint16)).(*uint16)

	return out0, err

}

// Fee is a free data retrieval call binding the contract method 0xddca3f43.
//
// Solidity: function fee() view returns(uint16)
func (_Hermes *HermesSession) Fee() (uint16, error) {
	return _Hermes.Contract.Fee(&_Hermes.CallOpts)
}

// Fee is a free data retrieval call binding the contract method 0xddca3f43.
//
// Solidity: function fee() view returns(uint16)
func (_Hermes *HermesCallerSession) Fee() (uint16, error) {
	return _Hermes.Contract.Fee(&_Hermes.CallOpts)
}

// FeeEffectiveAt is a free data retrieval call binding the contract method 0x1de6d56c.
//
// Solidity: function feeEffectiveAt() view returns(uint40)
func (_Hermes *HermesCaller) FeeEffectiveAt(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "feeEffectiveAt")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// FeeEffectiveAt is a free data retrieval call binding the contract method 0x1de6d56c.
//
// Solidity: function feeEffectiveAt() view returns(uint40)
func (_Hermes *HermesSession) FeeEffectiveAt() (*big.Int, error) {
	return _Hermes.Contract.FeeEffectiveAt(&_Hermes.CallOpts)
}

// FeeEffectiveAt is a free data retrieval call binding the contract method 0x1de6d56c.
//
// Solidity: function feeEffectiveAt() view returns(uint40)
func (_Hermes *HermesCallerSession) FeeEffectiveAt() (*big.Int, error) {
	return _Hermes.Contract.FeeEffectiveAt(&_Hermes.CallOpts)
}

// FeeNoticeDelay is a free data retrieval call binding the contract method 0xfc1a27ff.
//
// Solidity: function feeNoticeDelay() view returns(uint64)
func (_Hermes *HermesCaller) FeeNoticeDelay(opts *bind.CallOpts) (uint64, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "feeNoticeDelay")

	if err != nil {
		return *new(uint64), err
	}

	out0 := *abi.ConvertType(out[0], new(uint64)).(*uint64)

	return out0, err

}

// FeeNoticeDelay is a free data retrieval call binding the contract method 0xfc1a27ff.
//
// Solidity: function feeNoticeDelay() view returns(uint64)
func (_Hermes *HermesSession) FeeNoticeDelay() (uint64, error) {
	return _Hermes.Contract.FeeNoticeDelay(&_Hermes.CallOpts)
}

// FeeNoticeDelay is a free data retrieval call binding the contract method 0xfc1a27ff.
//
// Solidity: function feeNoticeDelay() view returns(uint64)
func (_Hermes *HermesCallerSession) FeeNoticeDelay() (uint64, error) {
	return _Hermes.Contract.FeeNoticeDelay(&_Hermes.CallOpts)
}

// HermesStake is a free data retrieval call binding the contract method 0x9ebdc8cb.
//
// Solidity: function hermesStake() view returns(uint128)
func (_Hermes *HermesCaller) HermesStake(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "hermesStake")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// HermesStake is a free data retrieval call binding the contract method 0x9ebdc8cb.
//
// Solidity: function hermesStake() view returns(uint128)
func (_Hermes *HermesSession) HermesStake() (*big.Int, error) {
	return _Hermes.Contract.HermesStake(&_Hermes.CallOpts)
}

// HermesStake is a free data retrieval call binding the contract method 0x9ebdc8cb.
//
// Solidity: function hermesStake() view returns(uint128)
func (_Hermes *HermesCallerSession) HermesStake() (*big.Int, error) {
	return _Hermes.Contract.HermesStake(&_Hermes.CallOpts)
}

// MaxChannelStake is a free data retrieval call binding the contract method 0x8583ac9f.
//
// Solidity: function maxChannelStake() view returns(uint128)
func (_Hermes *HermesCaller) MaxChannelStake(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "maxChannelStake")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// MaxChannelStake is a free data retrieval call binding the contract method 0x8583ac9f.
//
// Solidity: function maxChannelStake() view returns(uint128)
func (_Hermes *HermesSession) MaxChannelStake() (*big.Int, error) {
	return _Hermes.Contract.MaxChannelStake(&_Hermes.CallOpts)
}

// MaxChannelStake is a free data retrieval call binding the contract method 0x8583ac9f.
//
// Solidity: function maxChannelStake() view returns(uint128)
func (_Hermes *HermesCallerSession) MaxChannelStake() (*big.Int, error) {
	return _Hermes.Contract.MaxChannelStake(&_Hermes.CallOpts)
}

// MinChannelStake is a free data retrieval call binding the contract method 0x19a481f7.
//
// Solidity: function minChannelStake() view returns(uint128)
func (_Hermes *HermesCaller) MinChannelStake(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "minChannelStake")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// MinChannelStake is a free data retrieval call binding the contract method 0x19a481f7.
//
// Solidity: function minChannelStake() view returns(uint128)
func (_Hermes *HermesSession) MinChannelStake() (*big.Int, error) {
	return _Hermes.Contract.MinChannelStake(&_Hermes.CallOpts)
}

// MinChannelStake is a free data retrieval call binding the contract method 0x19a481f7.
//
// Solidity: function minChannelStake() view returns(uint128)
func (_Hermes *HermesCallerSession) MinChannelStake() (*big.Int, error) {
	return _Hermes.Contract.MinChannelStake(&_Hermes.CallOpts)
}

// Operator is a free data retrieval call binding the contract method 0x570ca735.
//
// Solidity: function operator() view returns(address)
func (_Hermes *HermesCaller) Operator(opts *bind.CallOpts) (common.Address, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "operator")

	if err != nil {
		return *new(common.Address), err
	}

	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)

	return out0, err

}

// Operator is a free data retrieval call binding the contract method 0x570ca735.
//
// Solidity: function operator() view returns(address)
func (_Hermes *HermesSession) Operator() (common.Address, error) {
	return _Hermes.Contract.Operator(&_Hermes.CallOpts)
}

// Operator is a free data retrieval call binding the contract method 0x570ca735.
//
// Solidity: function operator() view returns(address)
func (_Hermes *HermesCallerSession) Operator() (common.Address, error) {
	return _Hermes.Contract.Operator(&_Hermes.CallOpts)
}

// PendingFeeBps is a free data retrieval call binding the contract method 0x4c618e68.
//
// Solidity: function pendingFeeBps() view returns(uint16)
func (_Hermes *HermesCaller) PendingFeeBps(opts *bind.CallOpts) (uint16, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "pendingFeeBps")

	if err != nil {
		return *new(uint16), err
	}

	out0 := *abi.ConvertType(out[0], new(uint16)).(*uint16)

	return out0, err

}

// PendingFeeBps is a free data retrieval call binding the contract method 0x4c618e68.
//
// Solidity: function pendingFeeBps() view returns(uint16)
func (_Hermes *HermesSession) PendingFeeBps() (uint16, error) {
	return _Hermes.Contract.PendingFeeBps(&_Hermes.CallOpts)
}

// PendingFeeBps is a free data retrieval call binding the contract method 0x4c618e68.
//
// Solidity: function pendingFeeBps() view returns(uint16)
func (_Hermes *HermesCallerSession) PendingFeeBps() (uint16, error) {
	return _Hermes.Contract.PendingFeeBps(&_Hermes.CallOpts)
}

// Registry is a free data retrieval call binding the contract method 0x7b103999.
//
// Solidity: function registry() view returns(address)
func (_Hermes *HermesCaller) Registry(opts *bind.CallOpts) (common.Address, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "registry")

	if err != nil {
		return *new(common.Address), err
	}

	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)

	return out0, err

}

// Registry is a free data retrieval call binding the contract method 0x7b103999.
//
// Solidity: function registry() view returns(address)
func (_Hermes *HermesSession) Registry() (common.Address, error) {
	return _Hermes.Contract.Registry(&_Hermes.CallOpts)
}

// Registry is a free data retrieval call binding the contract method 0x7b103999.
//
// Solidity: function registry() view returns(address)
func (_Hermes *HermesCallerSession) Registry() (common.Address, error) {
	return _Hermes.Contract.Registry(&_Hermes.CallOpts)
}

// Status is a free data retrieval call binding the contract method 0x200d2ed2.
//
// Solidity: function status() view returns(uint8)
func (_Hermes *HermesCaller) Status(opts *bind.CallOpts) (uint8, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "status")

	if err != nil {
		return *new(uint8), err
	}

	out0 := *abi.ConvertType(out[0], new(uint8)).(*uint8)

	return out0, err

}

// Status is a free data retrieval call binding the contract method 0x200d2ed2.
//
// Solidity: function status() view returns(uint8)
func (_Hermes *HermesSession) Status() (uint8, error) {
	return _Hermes.Contract.Status(&_Hermes.CallOpts)
}

// Status is a free data retrieval call binding the contract method 0x200d2ed2.
//
// Solidity: function status() view returns(uint8)
func (_Hermes *HermesCallerSession) Status() (uint8, error) {
	return _Hermes.Contract.Status(&_Hermes.CallOpts)
}

// Token is a free data retrieval call binding the contract method 0xfc0c546a.
//
// Solidity: function token() view returns(address)
func (_Hermes *HermesCaller) Token(opts *bind.CallOpts) (common.Address, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "token")

	if err != nil {
		return *new(common.Address), err
	}

	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)

	return out0, err

}

// Token is a free data retrieval call binding the contract method 0xfc0c546a.
//
// Solidity: function token() view returns(address)
func (_Hermes *HermesSession) Token() (common.Address, error) {
	return _Hermes.Contract.Token(&_Hermes.CallOpts)
}

// Token is a free data retrieval call binding the contract method 0xfc0c546a.
//
// Solidity: function token() view returns(address)
func (_Hermes *HermesCallerSession) Token() (common.Address, error) {
	return _Hermes.Contract.Token(&_Hermes.CallOpts)
}

// TotalProviderStake is a free data retrieval call binding the contract method 0x8c48b69f.
//
// Solidity: function totalProviderStake() view returns(uint128)
func (_Hermes *HermesCaller) TotalProviderStake(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _Hermes.contract.Call(opts, &out, "totalProviderStake")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// TotalProviderStake is a free data retrieval call binding the contract method 0x8c48b69f.
//
// Solidity: function totalProviderStake() view returns(uint128)
func (_Hermes *HermesSession) TotalProviderStake() (*big.Int, error) {
	return _Hermes.Contract.TotalProviderStake(&_Hermes.CallOpts)
}

// TotalProviderStake is a free data retrieval call binding the contract method 0x8c48b69f.
//
// Solidity: function totalProviderStake() view returns(uint128)
func (_Hermes *HermesCallerSession) TotalProviderStake() (*big.Int, error) {
	return _Hermes.Contract.TotalProviderStake(&_Hermes.CallOpts)
}

// DecreaseStake is a paid mutator transaction binding the contract method 0x95600392.
//
// Solidity: function decreaseStake(address provider, uint96 amount, uint256 fee_, uint32 nonce, bytes signature) returns()
func (_Hermes *HermesTransactor) DecreaseStake(opts *bind.TransactOpts, provider common.Address, amount *big.Int, fee_ *big.Int, nonce uint32, signature []byte) (*types.Transaction, error) {
	return _Hermes.contract.Transact(opts, "decreaseStake", provider, amount, fee_, nonce, signature)
}

// DecreaseStake is a paid mutator transaction binding the contract method 0x95600392.
//
// Solidity: function decreaseStake(address provider, uint96 amount, uint256 fee_, uint32 nonce, bytes signature) returns()
func (_Hermes *HermesSession) DecreaseStake(provider common.Address, amount *big.Int, fee_ *big.Int, nonce uint32, signature []byte) (*types.Transaction, error) {
	return _Hermes.Contract.DecreaseStake(&_Hermes.TransactOpts, provider, amount, fee_, nonce, signature)
}

// DecreaseStake is a paid mutator transaction binding the contract method 0x95600392.
//
// Solidity: function decreaseStake(address provider, uint96 amount, uint256 fee_, uint32 nonce, bytes signature) returns()
func (_Hermes *HermesTransactorSession) DecreaseStake(provider common.Address, amount *big.Int, fee_ *big.Int, nonce uint32, signature []byte) (*types.Transaction, error) {
	return _Hermes.Contract.DecreaseStake(&_Hermes.TransactOpts, provider, amount, fee_, nonce, signature)
}

// IncreaseStake is a paid mutator transaction binding the contract method 0x62bd79ef.
//
// Solidity: function increaseStake(address provider, uint96 amount) returns()
func (_Hermes *HermesTransactor) IncreaseStake(opts *bind.TransactOpts, provider common.Address, amount *big.Int) (*types.Transaction, error) {
	return _Hermes.contract.Transact(opts, "increaseStake", provider, amount)
}

// IncreaseStake is a paid mutator transaction binding the contract method 0x62bd79ef.
//
// Solidity: function increaseStake(address provider, uint96 amount) returns()
func (_Hermes *HermesSession) IncreaseStake(provider common.Address, amount *big.Int) (*types.Transaction, error) {
	return _Hermes.Contract.IncreaseStake(&_Hermes.TransactOpts, provider, amount)
}

// IncreaseStake is a paid mutator transaction binding the contract method 0x62bd79ef.
//
// Solidity: function increaseStake(address provider, uint96 amount) returns()
func (_Hermes *HermesTransactorSession) IncreaseStake(provider common.Address, amount *big.Int) (*types.Transaction, error) {
	return _Hermes.Contract.IncreaseStake(&_Hermes.TransactOpts, provider, amount)
}

// Initialize is a paid mutator transaction binding the contract method 0x33090c8f.
//
// Solidity: function initialize(address operator_, uint128 stake, uint16 feeBps_, uint128 minStake, uint128 maxStake) returns()
func (_Hermes *HermesTransactor) Initialize(opts *bind.TransactOpts, operator_ common.Address, stake *big.Int, feeBps_ uint16, minStake *big.Int, maxStake *big.Int) (*types.Transaction, error) {
	return _Hermes.contract.Transact(opts, "initialize", operator_, stake, feeBps_, minStake, maxStake)
}

// Initialize is a paid mutator transaction binding the contract method 0x33090c8f.
//
// Solidity: function initialize(address operator_, uint128 stake, uint16 feeBps_, uint128 minStake, uint128 maxStake) returns()
func (_Hermes *HermesSession) Initialize(operator_ common.Address, stake *big.Int, feeBps_ uint16, minStake *big.Int, maxStake *big.Int) (*types.Transaction, error) {
	return _Hermes.Contract.Initialize(&_Hermes.TransactOpts, operator_, stake, feeBps_, minStake, maxStake)
}

// Initialize is a paid mutator transaction binding the contract method 0x33090c8f.
//
// Solidity: function initialize(address operator_, uint128 stake, uint16 feeBps_, uint128 minStake, uint128 maxStake) returns()
func (_Hermes *HermesTransactorSession) Initialize(operator_ common.Address, stake *big.Int, feeBps_ uint16, minStake *big.Int, maxStake *big.Int) (*types.Transaction, error) {
	return _Hermes.Contract.Initialize(&_Hermes.TransactOpts, operator_, stake, feeBps_, minStake, maxStake)
}

// ResolvePenalty is a paid mutator transaction binding the contract method 0x5323935a.
//
// Solidity: function resolvePenalty() returns()
func (_Hermes *HermesTransactor) ResolvePenalty(opts *bind.TransactOpts) (*types.Transaction, error) {
	return _Hermes.contract.Transact(opts, "resolvePenalty")
}

// ResolvePenalty is a paid mutator transaction binding the contract method 0x5323935a.
//
// Solidity: function resolvePenalty() returns()
func (_Hermes *HermesSession) ResolvePenalty() (*types.Transaction, error) {
	return _Hermes.Contract.ResolvePenalty(&_Hermes.TransactOpts)
}

// ResolvePenalty is a paid mutator transaction binding the contract method 0x5323935a.
//
// Solidity: function resolvePenalty() returns()
func (_Hermes *HermesTransactorSession) ResolvePenalty() (*types.Transaction, error) {
	return _Hermes.Contract.ResolvePenalty(&_Hermes.TransactOpts)
}

// SetFee is a paid mutator transaction binding the contract method 0x8e005553.
//
// Solidity: function setFee(uint16 newFeeBps) returns()
func (_Hermes *HermesTransactor) SetFee(opts *bind.TransactOpts, newFeeBps uint16) (*types.Transaction, error) {
	return _Hermes.contract.Transact(opts, "setFee", newFeeBps)
}

// SetFee is a paid mutator transaction binding the contract method 0x8e005553.
//
// Solidity: function setFee(uint16 newFeeBps) returns()
func (_Hermes *HermesSession) SetFee(newFeeBps uint16) (*types.Transaction, error) {
	return _Hermes.Contract.SetFee(&_Hermes.TransactOpts, newFeeBps)
}

// SetFee is a paid mutator transaction binding the contract method 0x8e005553.
//
// Solidity: function setFee(uint16 newFeeBps) returns()
func (_Hermes *HermesTransactorSession) SetFee(newFeeBps uint16) (*types.Transaction, error) {
	return _Hermes.Contract.SetFee(&_Hermes.TransactOpts, newFeeBps)
}

// SettlePromise is a paid mutator transaction binding the contract method 0x68057ccc.
//
// Solidity: function settlePromise(address provider, uint256 amount, uint256 fee_, bytes32 hashlock, bytes32 preimage, bytes signature) returns()
func (_Hermes *HermesTransactor) SettlePromise(opts *bind.TransactOpts, provider common.Address, amount *big.Int, fee_ *big.Int, hashlock [32]byte, preimage [32]byte, signature []byte) (*types.Transaction, error) {
	return _Hermes.contract.Transact(opts, "settlePromise", provider, amount, fee_, hashlock, preimage, signature)
}

// SettlePromise is a paid mutator transaction binding the contract method 0x68057ccc.
//
// Solidity: function settlePromise(address provider, uint256 amount, uint256 fee_, bytes32 hashlock, bytes32 preimage, bytes signature) returns()
func (_Hermes *HermesSession) SettlePromise(provider common.Address, amount *big.Int, fee_ *big.Int, hashlock [32]byte, preimage [32]byte, signature []byte) (*types.Transaction, error) {
	return _Hermes.Contract.SettlePromise(&_Hermes.TransactOpts, provider, amount, fee_, hashlock, preimage, signature)
}

// SettlePromise is a paid mutator transaction binding the contract method 0x68057ccc.
//
// Solidity: function settlePromise(address provider, uint256 amount, uint256 fee_, bytes32 hashlock, bytes32 preimage, bytes signature) returns()
func (_Hermes *HermesTransactorSession) SettlePromise(provider common.Address, amount *big.Int, fee_ *big.Int, hashlock [32]byte, preimage [32]byte, signature []byte) (*types.Transaction, error) {
	return _Hermes.Contract.SettlePromise(&_Hermes.TransactOpts, provider, amount, fee_, hashlock, preimage, signature)
}

// Withdraw is a paid mutator transaction binding the contract method 0xf3fef3a3.
//
// Solidity: function withdraw(address to, uint256 amount) returns()
func (_Hermes *HermesTransactor) Withdraw(opts *bind.TransactOpts, to common.Address, amount *big.Int) (*types.Transaction, error) {
	return _Hermes.contract.Transact(opts, "withdraw", to, amount)
}

// Withdraw is a paid mutator transaction binding the contract method 0xf3fef3a3.
//
// Solidity: function withdraw(address to, uint256 amount) returns()
func (_Hermes *HermesSession) Withdraw(to common.Address, amount *big.Int) (*types.Transaction, error) {
	return _Hermes.Contract.Withdraw(&_Hermes.TransactOpts, to, amount)
}

// Withdraw is a paid mutator transaction binding the contract method 0xf3fef3a3.
//
// Solidity: function withdraw(address to, uint256 amount) returns()
func (_Hermes *HermesTransactorSession) Withdraw(to common.Address, amount *big.Int) (*types.Transaction, error) {
	return _Hermes.Contract.Withdraw(&_Hermes.TransactOpts, to, amount)
}

// HermesFeeAnnouncedIterator is returned from FilterFeeAnnounced and is used to iterate over the raw logs and unpacked data for FeeAnnounced events raised by the Hermes contract.
type HermesFeeAnnouncedIterator struct {
	Event *HermesFeeAnnounced // Event containing the contract specifics and raw log

	contract *bind.BoundContract // Generic contract to use for unpacking event data
	event    string              // Event name to use for unpacking event data

	logs chan types.Log        // Log channel receiving the found contract events
	sub  ethereum.Subscription // Subscription for errors, completion and termination
	done bool                  // Whether the subscription completed delivering logs
	fail error                 // Occurred error to stop iteration
}

// Next advances the iterator to the subsequent event, returning whether there
// are any more events found. In case of a retrieval or parsing error, false is
// returned and Error() can be queried for the exact failure.
func (it *HermesFeeAnnouncedIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(HermesFeeAnnounced)
			if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
				it.fail = err
				return false
			}
			it.Event.Raw = log
			return true

		default:
			return false
		}
	}
	// Iterator still in progress, wait for either a data or an error event
	select {
	case log := <-it.logs:
		it.Event = new(HermesFeeAnnounced)
		if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
			it.fail = err
			return false
		}
		it.Event.Raw = log
		return true

	case err := <-it.sub.Err():
		it.done = true
		it.fail = err
		return it.Next()
	}
}

// Error returns any retrieval or parsing error occurred during filtering.
func (it *HermesFeeAnnouncedIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *HermesFeeAnnouncedIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// HermesFeeAnnounced represents a FeeAnnounced event raised by the Hermes contract.
type HermesFeeAnnounced struct {
	FeeBps      uint16
	EffectiveAt *big.Int
	Raw         types.Log // Blockchain specific contextual infos
}

// FilterFeeAnnounced is a free log retrieval operation binding the contract event 0x700dd61c16c1c88d9470594ec2d73f56dac327961f2a4bb5f4d8307fd97d2d52.
//
// Solidity: event FeeAnnounced(uint16 feeBps, uint40 effectiveAt)
func (_Hermes *HermesFilterer) FilterFeeAnnounced(opts *bind.FilterOpts) (*HermesFeeAnnouncedIterator, error) {

	logs, sub, err := _Hermes.contract.FilterLogs(opts, "FeeAnnounced")
	if err != nil {
		return nil, err
	}
	return &HermesFeeAnnouncedIterator{contract: _Hermes.contract, event: "FeeAnnounced", logs: logs, sub: sub}, nil
}

// WatchFeeAnnounced is a free log subscription operation binding the contract event 0x700dd61c16c1c88d9470594ec2d73f56dac327961f2a4bb5f4d8307fd97d2d52.
//
// Solidity: event FeeAnnounced(uint16 feeBps, uint40 effectiveAt)
func (_Hermes *HermesFilterer) WatchFeeAnnounced(opts *bind.WatchOpts, sink chan<- *HermesFeeAnnounced) (event.Subscription, error) {

	logs, sub, err := _Hermes.contract.WatchLogs(opts, "FeeAnnounced")
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(HermesFeeAnnounced)
				if err := _Hermes.contract.UnpackLog(event, "FeeAnnounced", log); err != nil {
					// If the signature doesn't match, skip this log.
					if errors.Is(err, bind.ErrEventSignatureMismatch) {
						continue
					}
					return err
				}
				event.Raw = log

				select {
				case sink <- event:
				case err := <-sub.Err():
					return err
				case <-quit:
					return nil
				}
			case err := <-sub.Err():
				return err
			case <-quit:
				return nil
			}
		}
	}), nil
}

// ParseFeeAnnounced is a log parse operation binding the contract event 0x700dd61c16c1c88d9470594ec2d73f56dac327961f2a4bb5f4d8307fd97d2d52.
//
// Solidity: event FeeAnnounced(uint16 feeBps, uint40 effectiveAt)
func (_Hermes *HermesFilterer) ParseFeeAnnounced(log types.Log) (*HermesFeeAnnounced, error) {
	event := new(HermesFeeAnnounced)
	if err := _Hermes.contract.UnpackLog(event, "FeeAnnounced", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// HermesPenaltyResolvedIterator is returned from FilterPenaltyResolved and is used to iterate over the raw logs and unpacked data for PenaltyResolved events raised by the Hermes contract.
type HermesPenaltyResolvedIterator struct {
	Event *HermesPenaltyResolved // Event containing the contract specifics and raw log

	contract *bind.BoundContract // Generic contract to use for unpacking event data
	event    string              // Event name to use for unpacking event data

	logs chan types.Log        // Log channel receiving the found contract events
	sub  ethereum.Subscription // Subscription for errors, completion and termination
	done bool                  // Whether the subscription completed delivering logs
	fail error                 // Occurred error to stop iteration
}

// Next advances the iterator to the subsequent event, returning whether there
// are any more events found. In case of a retrieval or parsing error, false is
// returned and Error() can be queried for the exact failure.
func (it *HermesPenaltyResolvedIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(HermesPenaltyResolved)
			if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
				it.fail = err
				return false
			}
			it.Event.Raw = log
			return true

		default:
			return false
		}
	}
	// Iterator still in progress, wait for either a data or an error event
	select {
	case log := <-it.logs:
		it.Event = new(HermesPenaltyResolved)
		if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
			it.fail = err
			return false
		}
		it.Event.Raw = log
		return true

	case err := <-it.sub.Err():
		it.done = true
		it.fail = err
		return it.Next()
	}
}

// Error returns any retrieval or parsing error occurred during filtering.
func (it *HermesPenaltyResolvedIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *HermesPenaltyResolvedIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// HermesPenaltyResolved represents a PenaltyResolved event raised by the Hermes contract.
type HermesPenaltyResolved struct {
	Balance *big.Int
	Raw     types.Log // Blockchain specific contextual infos
}

// FilterPenaltyResolved is a free log retrieval operation binding the contract event 0x876d19b37d9aa1bff0989e39cbac3d262b01c78fdc317c3581d27ccb950d9e5c.
//
// Solidity: event PenaltyResolved(uint256 balance)
func (_Hermes *HermesFilterer) FilterPenaltyResolved(opts *bind.FilterOpts) (*HermesPenaltyResolvedIterator, error) {

	logs, sub, err := _Hermes.contract.FilterLogs(opts, "PenaltyResolved")
	if err != nil {
		return nil, err
	}
	return &HermesPenaltyResolvedIterator{contract: _Hermes.contract, event: "PenaltyResolved", logs: logs, sub: sub}, nil
}

// WatchPenaltyResolved is a free log subscription operation binding the contract event 0x876d19b37d9aa1bff0989e39cbac3d262b01c78fdc317c3581d27ccb950d9e5c.
//
// Solidity: event PenaltyResolved(uint256 balance)
func (_Hermes *HermesFilterer) WatchPenaltyResolved(opts *bind.WatchOpts, sink chan<- *HermesPenaltyResolved) (event.Subscription, error) {

	logs, sub, err := _Hermes.contract.WatchLogs(opts, "PenaltyResolved")
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(HermesPenaltyResolved)
				if err := _Hermes.contract.UnpackLog(event, "PenaltyResolved", log); err != nil {
					// If the signature doesn't match, skip this log.
					if errors.Is(err, bind.ErrEventSignatureMismatch) {
						continue
					}
					return err
				}
				event.Raw = log

				select {
				case sink <- event:
				case err := <-sub.Err():
					return err
				case <-quit:
					return nil
				}
			case err := <-sub.Err():
				return err
			case <-quit:
				return nil
			}
		}
	}), nil
}

// ParsePenaltyResolved is a log parse operation binding the contract event 0x876d19b37d9aa1bff0989e39cbac3d262b01c78fdc317c3581d27ccb950d9e5c.
//
// Solidity: event PenaltyResolved(uint256 balance)
func (_Hermes *HermesFilterer) ParsePenaltyResolved(log types.Log) (*HermesPenaltyResolved, error) {
	event := new(HermesPenaltyResolved)
	if err := _Hermes.contract.UnpackLog(event, "PenaltyResolved", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// HermesPenaltyStartedIterator is returned from FilterPenaltyStarted and is used to iterate over the raw logs and unpacked data for PenaltyStarted events raised by the Hermes contract.
type HermesPenaltyStartedIterator struct {
	Event *HermesPenaltyStarted // Event containing the contract specifics and raw log

	contract *bind.BoundContract // Generic contract to use for unpacking event data
	event    string              // Event name to use for unpacking event data

	logs chan types.Log        // Log channel receiving the found contract events
	sub  ethereum.Subscription // Subscription for errors, completion and termination
	done bool                  // Whether the subscription completed delivering logs
	fail error                 // Occurred error to stop iteration
}

// Next advances the iterator to the subsequent event, returning whether there
// are any more events found. In case of a retrieval or parsing error, false is
// returned and Error() can be queried for the exact failure.
func (it *HermesPenaltyStartedIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(HermesPenaltyStarted)
			if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
				it.fail = err
				return false
			}
			it.Event.Raw = log
			return true

		default:
			return false
		}
	}
	// Iterator still in progress, wait for either a data or an error event
	select {
	case log := <-it.logs:
		it.Event = new(HermesPenaltyStarted)
		if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
			it.fail = err
			return false
		}
		it.Event.Raw = log
		return true

	case err := <-it.sub.Err():
		it.done = true
		it.fail = err
		return it.Next()
	}
}

// Error returns any retrieval or parsing error occurred during filtering.
func (it *HermesPenaltyStartedIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *HermesPenaltyStartedIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// HermesPenaltyStarted represents a PenaltyStarted event raised by the Hermes contract.
type HermesPenaltyStarted struct {
	Balance  *big.Int
	Required *big.Int
	Raw      types.Log // Blockchain specific contextual infos
}

// FilterPenaltyStarted is a free log retrieval operation binding the contract event 0x0d4e1c7a1cfc63bbf90418653fc31b445bff2b953262f204a28d67c0fa8dd0f9.
//
// Solidity: event PenaltyStarted(uint256 balance, uint256 required)
func (_Hermes *HermesFilterer) FilterPenaltyStarted(opts *bind.FilterOpts) (*HermesPenaltyStartedIterator, error) {

	logs, sub, err := _Hermes.contract.FilterLogs(opts, "PenaltyStarted")
	if err != nil {
		return nil, err
	}
	return &HermesPenaltyStartedIterator{contract: _Hermes.contract, event: "PenaltyStarted", logs: logs, sub: sub}, nil
}

// WatchPenaltyStarted is a free log subscription operation binding the contract event 0x0d4e1c7a1cfc63bbf90418653fc31b445bff2b953262f204a28d67c0fa8dd0f9.
//
// Solidity: event PenaltyStarted(uint256 balance, uint256 required)
func (_Hermes *HermesFilterer) WatchPenaltyStarted(opts *bind.WatchOpts, sink chan<- *HermesPenaltyStarted) (event.Subscription, error) {

	logs, sub, err := _Hermes.contract.WatchLogs(opts, "PenaltyStarted")
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(HermesPenaltyStarted)
				if err := _Hermes.contract.UnpackLog(event, "PenaltyStarted", log); err != nil {
					// If the signature doesn't match, skip this log.
					if errors.Is(err, bind.ErrEventSignatureMismatch) {
						continue
					}
					return err
				}
				event.Raw = log

				select {
				case sink <- event:
				case err := <-sub.Err():
					return err
				case <-quit:
					return nil
				}
			case err := <-sub.Err():
				return err
			case <-quit:
				return nil
			}
		}
	}), nil
}

// ParsePenaltyStarted is a log parse operation binding the contract event 0x0d4e1c7a1cfc63bbf90418653fc31b445bff2b953262f204a28d67c0fa8dd0f9.
//
// Solidity: event PenaltyStarted(uint256 balance, uint256 required)
func (_Hermes *HermesFilterer) ParsePenaltyStarted(log types.Log) (*HermesPenaltyStarted, error) {
	event := new(HermesPenaltyStarted)
	if err := _Hermes.contract.UnpackLog(event, "PenaltyStarted", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// HermesProviderSettledIterator is returned from FilterProviderSettled and is used to iterate over the raw logs and unpacked data for ProviderSettled events raised by the Hermes contract.
type HermesProviderSettledIterator struct {
	Event *HermesProviderSettled // Event containing the contract specifics and raw log

	contract *bind.BoundContract // Generic contract to use for unpacking event data
	event    string              // Event name to use for unpacking event data

	logs chan types.Log        // Log channel receiving the found contract events
	sub  ethereum.Subscription // Subscription for errors, completion and termination
	done bool                  // Whether the subscription completed delivering logs
	fail error                 // Occurred error to stop iteration
}

// Next advances the iterator to the subsequent event, returning whether there
// are any more events found. In case of a retrieval or parsing error, false is
// returned and Error() can be queried for the exact failure.
func (it *HermesProviderSettledIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(HermesProviderSettled)
			if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
				it.fail = err
				return false
			}
			it.Event.Raw = log
			return true

		default:
			return false
		}
	}
	// Iterator still in progress, wait for either a data or an error event
	select {
	case log := <-it.logs:
		it.Event = new(HermesProviderSettled)
		if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
			it.fail = err
			return false
		}
		it.Event.Raw = log
		return true

	case err := <-it.sub.Err():
		it.done = true
		it.fail = err
		return it.Next()
	}
}

// Error returns any retrieval or parsing error occurred during filtering.
func (it *HermesProviderSettledIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *HermesProviderSettledIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// HermesProviderSettled represents a ProviderSettled event raised by the Hermes contract.
type HermesProviderSettled struct {
	Provider  common.Address
	ChannelId [32]byte
	Paid      *big.Int
	HermesFee *big.Int
	Fee       *big.Int
	Hashlock  [32]byte
	Raw       types.Log // Blockchain specific contextual infos
}

// FilterProviderSettled is a free log retrieval operation binding the contract event 0xead6c3763d9b4332f07768764b4babc4921db3e959ca140bda233c16c464aad5.
//
// Solidity: event ProviderSettled(address indexed provider, bytes32 indexed channelId, uint256 paid, uint256 hermesFee, uint256 fee, bytes32 hashlock)
func (_Hermes *HermesFilterer) FilterProviderSettled(opts *bind.FilterOpts, provider []common.Address, channelId [][32]byte) (*HermesProviderSettledIterator, error) {

	var providerRule []interface{}
	for _, providerItem := range provider {
		providerRule = append(providerRule, providerItem)
	}
	var channelIdRule []interface{}
	for _, channelIdItem := range channelId {
		channelIdRule = append(channelIdRule, channelIdItem)
	}

	logs, sub, err := _Hermes.contract.FilterLogs(opts, "ProviderSettled", providerRule, channelIdRule)
	if err != nil {
		return nil, err
	}
	return &HermesProviderSettledIterator{contract: _Hermes.contract, event: "ProviderSettled", logs: logs, sub: sub}, nil
}

// WatchProviderSettled is a free log subscription operation binding the contract event 0xead6c3763d9b4332f07768764b4babc4921db3e959ca140bda233c16c464aad5.
//
// Solidity: event ProviderSettled(address indexed provider, bytes32 indexed channelId, uint256 paid, uint256 hermesFee, uint256 fee, bytes32 hashlock)
func (_Hermes *HermesFilterer) WatchProviderSettled(opts *bind.WatchOpts, sink chan<- *HermesProviderSettled, provider []common.Address, channelId [][32]byte) (event.Subscription, error) {

	var providerRule []interface{}
	for _, providerItem := range provider {
		providerRule = append(providerRule, providerItem)
	}
	var channelIdRule []interface{}
	for _, channelIdItem := range channelId {
		channelIdRule = append(channelIdRule, channelIdItem)
	}

	logs, sub, err := _Hermes.contract.WatchLogs(opts, "ProviderSettled", providerRule, channelIdRule)
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(HermesProviderSettled)
				if err := _Hermes.contract.UnpackLog(event, "ProviderSettled", log); err != nil {
					// If the signature doesn't match, skip this log.
					if errors.Is(err, bind.ErrEventSignatureMismatch) {
						continue
					}
					return err
				}
				event.Raw = log

				select {
				case sink <- event:
				case err := <-sub.Err():
					return err
				case <-quit:
					return nil
				}
			case err := <-sub.Err():
				return err
			case <-quit:
				return nil
			}
		}
	}), nil
}

// ParseProviderSettled is a log parse operation binding the contract event 0xead6c3763d9b4332f07768764b4babc4921db3e959ca140bda233c16c464aad5.
//
// Solidity: event ProviderSettled(address indexed provider, bytes32 indexed channelId, uint256 paid, uint256 hermesFee, uint256 fee, bytes32 hashlock)
func (_Hermes *HermesFilterer) ParseProviderSettled(log types.Log) (*HermesProviderSettled, error) {
	event := new(HermesProviderSettled)
	if err := _Hermes.contract.UnpackLog(event, "ProviderSettled", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// HermesStakeChangedIterator is returned from FilterStakeChanged and is used to iterate over the raw logs and unpacked data for StakeChanged events raised by the Hermes contract.
type HermesStakeChangedIterator struct {
	Event *HermesStakeChanged // Event containing the contract specifics and raw log

	contract *bind.BoundContract // Generic contract to use for unpacking event data
	event    string              // Event name to use for unpacking event data

	logs chan types.Log        // Log channel receiving the found contract events
	sub  ethereum.Subscription // Subscription for errors, completion and termination
	done bool                  // Whether the subscription completed delivering logs
	fail error                 // Occurred error to stop iteration
}

// Next advances the iterator to the subsequent event, returning whether there
// are any more events found. In case of a retrieval or parsing error, false is
// returned and Error() can be queried for the exact failure.
func (it *HermesStakeChangedIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(HermesStakeChanged)
			if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
				it.fail = err
				return false
			}
			it.Event.Raw = log
			return true

		default:
			return false
		}
	}
	// Iterator still in progress, wait for either a data or an error event
	select {
	case log := <-it.logs:
		it.Event = new(HermesStakeChanged)
		if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
			it.fail = err
			return false
		}
		it.Event.Raw = log
		return true

	case err := <-it.sub.Err():
		it.done = true
		it.fail = err
		return it.Next()
	}
}

// Error returns any retrieval or parsing error occurred during filtering.
func (it *HermesStakeChangedIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *HermesStakeChangedIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// HermesStakeChanged represents a StakeChanged event raised by the Hermes contract.
type HermesStakeChanged struct {
	Provider common.Address
	Stake    *big.Int
	Raw      types.Log // Blockchain specific contextual infos
}

// FilterStakeChanged is a free log retrieval operation binding the contract event 0x39df0e5286a3ef2f42a0bf52f32cfe2c58e5b0405f47fe512f2c2439e4cfe204.
//
// Solidity: event StakeChanged(address indexed provider, uint256 stake)
func (_Hermes *HermesFilterer) FilterStakeChanged(opts *bind.FilterOpts, provider []common.Address) (*HermesStakeChangedIterator, error) {

	var providerRule []interface{}
	for _, providerItem := range provider {
		providerRule = append(providerRule, providerItem)
	}

	logs, sub, err := _Hermes.contract.FilterLogs(opts, "StakeChanged", providerRule)
	if err != nil {
		return nil, err
	}
	return &HermesStakeChangedIterator{contract: _Hermes.contract, event: "StakeChanged", logs: logs, sub: sub}, nil
}

// WatchStakeChanged is a free log subscription operation binding the contract event 0x39df0e5286a3ef2f42a0bf52f32cfe2c58e5b0405f47fe512f2c2439e4cfe204.
//
// Solidity: event StakeChanged(address indexed provider, uint256 stake)
func (_Hermes *HermesFilterer) WatchStakeChanged(opts *bind.WatchOpts, sink chan<- *HermesStakeChanged, provider []common.Address) (event.Subscription, error) {

	var providerRule []interface{}
	for _, providerItem := range provider {
		providerRule = append(providerRule, providerItem)
	}

	logs, sub, err := _Hermes.contract.WatchLogs(opts, "StakeChanged", providerRule)
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(HermesStakeChanged)
				if err := _Hermes.contract.UnpackLog(event, "StakeChanged", log); err != nil {
					// If the signature doesn't match, skip this log.
					if errors.Is(err, bind.ErrEventSignatureMismatch) {
						continue
					}
					return err
				}
				event.Raw = log

				select {
				case sink <- event:
				case err := <-sub.Err():
					return err
				case <-quit:
					return nil
				}
			case err := <-sub.Err():
				return err
			case <-quit:
				return nil
			}
		}
	}), nil
}

// ParseStakeChanged is a log parse operation binding the contract event 0x39df0e5286a3ef2f42a0bf52f32cfe2c58e5b0405f47fe512f2c2439e4cfe204.
//
// Solidity: event StakeChanged(address indexed provider, uint256 stake)
func (_Hermes *HermesFilterer) ParseStakeChanged(log types.Log) (*HermesStakeChanged, error) {
	event := new(HermesStakeChanged)
	if err := _Hermes.contract.UnpackLog(event, "StakeChanged", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// HermesWithdrawnIterator is returned from FilterWithdrawn and is used to iterate over the raw logs and unpacked data for Withdrawn events raised by the Hermes contract.
type HermesWithdrawnIterator struct {
	Event *HermesWithdrawn // Event containing the contract specifics and raw log

	contract *bind.BoundContract // Generic contract to use for unpacking event data
	event    string              // Event name to use for unpacking event data

	logs chan types.Log        // Log channel receiving the found contract events
	sub  ethereum.Subscription // Subscription for errors, completion and termination
	done bool                  // Whether the subscription completed delivering logs
	fail error                 // Occurred error to stop iteration
}

// Next advances the iterator to the subsequent event, returning whether there
// are any more events found. In case of a retrieval or parsing error, false is
// returned and Error() can be queried for the exact failure.
func (it *HermesWithdrawnIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(HermesWithdrawn)
			if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
				it.fail = err
				return false
			}
			it.Event.Raw = log
			return true

		default:
			return false
		}
	}
	// Iterator still in progress, wait for either a data or an error event
	select {
	case log := <-it.logs:
		it.Event = new(HermesWithdrawn)
		if err := it.contract.UnpackLog(it.Event, it.event, log); err != nil {
			it.fail = err
			return false
		}
		it.Event.Raw = log
		return true

	case err := <-it.sub.Err():
		it.done = true
		it.fail = err
		return it.Next()
	}
}

// Error returns any retrieval or parsing error occurred during filtering.
func (it *HermesWithdrawnIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *HermesWithdrawnIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// HermesWithdrawn represents a Withdrawn event raised by the Hermes contract.
type HermesWithdrawn struct {
	To     common.Address
	Amount *big.Int
	Raw    types.Log // Blockchain specific contextual infos
}

// FilterWithdrawn is a free log retrieval operation binding the contract event 0x7084f5476618d8e60b11ef0d7d3f06914655adb8793e28ff7f018d4c76d505d5.
//
// Solidity: event Withdrawn(address indexed to, uint256 amount)
func (_Hermes *HermesFilterer) FilterWithdrawn(opts *bind.FilterOpts, to []common.Address) (*HermesWithdrawnIterator, error) {

	var toRule []interface{}
	for _, toItem := range to {
		toRule = append(toRule, toItem)
	}

	logs, sub, err := _Hermes.contract.FilterLogs(opts, "Withdrawn", toRule)
	if err != nil {
		return nil, err
	}
	return &HermesWithdrawnIterator{contract: _Hermes.contract, event: "Withdrawn", logs: logs, sub: sub}, nil
}

// WatchWithdrawn is a free log subscription operation binding the contract event 0x7084f5476618d8e60b11ef0d7d3f06914655adb8793e28ff7f018d4c76d505d5.
//
// Solidity: event Withdrawn(address indexed to, uint256 amount)
func (_Hermes *HermesFilterer) WatchWithdrawn(opts *bind.WatchOpts, sink chan<- *HermesWithdrawn, to []common.Address) (event.Subscription, error) {

	var toRule []interface{}
	for _, toItem := range to {
		toRule = append(toRule, toItem)
	}

	logs, sub, err := _Hermes.contract.WatchLogs(opts, "Withdrawn", toRule)
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(HermesWithdrawn)
				if err := _Hermes.contract.UnpackLog(event, "Withdrawn", log); err != nil {
					// If the signature doesn't match, skip this log.
					if errors.Is(err, bind.ErrEventSignatureMismatch) {
						continue
					}
					return err
				}
				event.Raw = log

				select {
				case sink <- event:
				case err := <-sub.Err():
					return err
				case <-quit:
					return nil
				}
			case err := <-sub.Err():
				return err
			case <-quit:
				return nil
			}
		}
	}), nil
}

// ParseWithdrawn is a log parse operation binding the contract event 0x7084f5476618d8e60b11ef0d7d3f06914655adb8793e28ff7f018d4c76d505d5.
//
// Solidity: event Withdrawn(address indexed to, uint256 amount)
func (_Hermes *HermesFilterer) ParseWithdrawn(log types.Log) (*HermesWithdrawn, error) {
	event := new(HermesWithdrawn)
	if err := _Hermes.contract.UnpackLog(event, "Withdrawn", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}
