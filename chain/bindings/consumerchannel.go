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

// ConsumerChannelMetaData contains all meta data concerning the ConsumerChannel contract.
var ConsumerChannelMetaData = &bind.MetaData{
	ABI: "[{\"inputs\":[{\"internalType\":\"address\",\"name\":\"registry_\",\"type\":\"address\"},{\"internalType\":\"contractIERC20Min\",\"name\":\"token_\",\"type\":\"address\"},{\"internalType\":\"uint64\",\"name\":\"exitTimelock_\",\"type\":\"uint64\"}],\"stateMutability\":\"nonpayable\",\"type\":\"constructor\"},{\"inputs\":[],\"name\":\"AlreadyInitialized\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"got\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"want\",\"type\":\"uint256\"}],\"name\":\"BadNonce\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"BadPreimage\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"BadSignature\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ChannelEmpty\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"unlockAt\",\"type\":\"uint64\"}],\"name\":\"ExitAlreadyRequested\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"unlockAt\",\"type\":\"uint64\"},{\"internalType\":\"uint256\",\"name\":\"now_\",\"type\":\"uint256\"}],\"name\":\"ExitLocked\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ExitNotRequested\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"FeeAboveAmount\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"NotInitialized\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"NotRegistry\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"settled\",\"type\":\"uint256\"}],\"name\":\"NothingToSettle\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroAddress\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"}],\"name\":\"ExitFinalized\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":false,\"internalType\":\"uint64\",\"name\":\"unlockAt\",\"type\":\"uint64\"}],\"name\":\"ExitRequested\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"paid\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"settled\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"bytes32\",\"name\":\"hashlock\",\"type\":\"bytes32\"}],\"name\":\"PromiseSettled\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint96\",\"name\":\"nonce\",\"type\":\"uint96\"}],\"name\":\"Withdrawn\",\"type\":\"event\"},{\"inputs\":[],\"name\":\"channelId\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"exitTimelock\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"exitUnlockAt\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"finalizeExit\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"hermes\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"identity\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"identity_\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"hermes_\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"feeTo\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"}],\"name\":\"initialize\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"nonce\",\"outputs\":[{\"internalType\":\"uint96\",\"name\":\"\",\"type\":\"uint96\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"}],\"name\":\"payFee\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"registry\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"internalType\":\"uint96\",\"name\":\"nonce_\",\"type\":\"uint96\"},{\"internalType\":\"bytes\",\"name\":\"identitySig\",\"type\":\"bytes\"}],\"name\":\"requestExit\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"nonce_\",\"type\":\"uint256\"}],\"name\":\"requestExitDigest\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"internalType\":\"bytes32\",\"name\":\"hashlock\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"preimage\",\"type\":\"bytes32\"},{\"internalType\":\"bytes\",\"name\":\"signature\",\"type\":\"bytes\"}],\"name\":\"settlePromise\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"settled\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"token\",\"outputs\":[{\"internalType\":\"contractIERC20Min\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"internalType\":\"uint96\",\"name\":\"nonce_\",\"type\":\"uint96\"},{\"internalType\":\"bytes\",\"name\":\"identitySig\",\"type\":\"bytes\"},{\"internalType\":\"bytes\",\"name\":\"hermesSig\",\"type\":\"bytes\"}],\"name\":\"withdraw\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"fee\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"nonce_\",\"type\":\"uint256\"}],\"name\":\"withdrawDigest\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"}]",
}

// ConsumerChannelABI is the input ABI used to generate the binding from.
// Deprecated: Use ConsumerChannelMetaData.ABI instead.
var ConsumerChannelABI = ConsumerChannelMetaData.ABI

// ConsumerChannel is an auto generated Go binding around an Ethereum contract.
type ConsumerChannel struct {
	ConsumerChannelCaller     // Read-only binding to the contract
	ConsumerChannelTransactor // Write-only binding to the contract
	ConsumerChannelFilterer   // Log filterer for contract events
}

// ConsumerChannelCaller is an auto generated read-only Go binding around an Ethereum contract.
type ConsumerChannelCaller struct {
	contract *bind.BoundContract // Generic contract wrapper for the low level calls
}

// ConsumerChannelTransactor is an auto generated write-only Go binding around an Ethereum contract.
type ConsumerChannelTransactor struct {
	contract *bind.BoundContract // Generic contract wrapper for the low level calls
}

// ConsumerChannelFilterer is an auto generated log filtering Go binding around an Ethereum contract events.
type ConsumerChannelFilterer struct {
	contract *bind.BoundContract // Generic contract wrapper for the low level calls
}

// ConsumerChannelSession is an auto generated Go binding around an Ethereum contract,
// with pre-set call and transact options.
type ConsumerChannelSession struct {
	Contract     *ConsumerChannel  // Generic contract binding to set the session for
	CallOpts     bind.CallOpts     // Call options to use throughout this session
	TransactOpts bind.TransactOpts // Transaction auth options to use throughout this session
}

// ConsumerChannelCallerSession is an auto generated read-only Go binding around an Ethereum contract,
// with pre-set call options.
type ConsumerChannelCallerSession struct {
	Contract *ConsumerChannelCaller // Generic contract caller binding to set the session for
	CallOpts bind.CallOpts          // Call options to use throughout this session
}

// ConsumerChannelTransactorSession is an auto generated write-only Go binding around an Ethereum contract,
// with pre-set transact options.
type ConsumerChannelTransactorSession struct {
	Contract     *ConsumerChannelTransactor // Generic contract transactor binding to set the session for
	TransactOpts bind.TransactOpts          // Transaction auth options to use throughout this session
}

// ConsumerChannelRaw is an auto generated low-level Go binding around an Ethereum contract.
type ConsumerChannelRaw struct {
	Contract *ConsumerChannel // Generic contract binding to access the raw methods on
}

// ConsumerChannelCallerRaw is an auto generated low-level read-only Go binding around an Ethereum contract.
type ConsumerChannelCallerRaw struct {
	Contract *ConsumerChannelCaller // Generic read-only contract binding to access the raw methods on
}

// ConsumerChannelTransactorRaw is an auto generated low-level write-only Go binding around an Ethereum contract.
type ConsumerChannelTransactorRaw struct {
	Contract *ConsumerChannelTransactor // Generic write-only contract binding to access the raw methods on
}

// NewConsumerChannel creates a new instance of ConsumerChannel, bound to a specific deployed contract.
func NewConsumerChannel(address common.Address, backend bind.ContractBackend) (*ConsumerChannel, error) {
	contract, err := bindConsumerChannel(address, backend, backend, backend)
	if err != nil {
		return nil, err
	}
	return &ConsumerChannel{ConsumerChannelCaller: ConsumerChannelCaller{contract: contract}, ConsumerChannelTransactor: ConsumerChannelTransactor{contract: contract}, ConsumerChannelFilterer: ConsumerChannelFilterer{contract: contract}}, nil
}

// NewConsumerChannelCaller creates a new read-only instance of ConsumerChannel, bound to a specific deployed contract.
func NewConsumerChannelCaller(address common.Address, caller bind.ContractCaller) (*ConsumerChannelCaller, error) {
	contract, err := bindConsumerChannel(address, caller, nil, nil)
	if err != nil {
		return nil, err
	}
	return &ConsumerChannelCaller{contract: contract}, nil
}

// NewConsumerChannelTransactor creates a new write-only instance of ConsumerChannel, bound to a specific deployed contract.
func NewConsumerChannelTransactor(address common.Address, transactor bind.ContractTransactor) (*ConsumerChannelTransactor, error) {
	contract, err := bindConsumerChannel(address, nil, transactor, nil)
	if err != nil {
		return nil, err
	}
	return &ConsumerChannelTransactor{contract: contract}, nil
}

// NewConsumerChannelFilterer creates a new log filterer instance of ConsumerChannel, bound to a specific deployed contract.
func NewConsumerChannelFilterer(address common.Address, filterer bind.ContractFilterer) (*ConsumerChannelFilterer, error) {
	contract, err := bindConsumerChannel(address, nil, nil, filterer)
	if err != nil {
		return nil, err
	}
	return &ConsumerChannelFilterer{contract: contract}, nil
}

// bindConsumerChannel binds a generic wrapper to an already deployed contract.
func bindConsumerChannel(address common.Address, caller bind.ContractCaller, transactor bind.ContractTransactor, filterer bind.ContractFilterer) (*bind.BoundContract, error) {
	parsed, err := ConsumerChannelMetaData.GetAbi()
	if err != nil {
		return nil, err
	}
	return bind.NewBoundContract(address, *parsed, caller, transactor, filterer), nil
}

// Call invokes the (constant) contract method with params as input values and
// sets the output to result. The result type might be a single field for simple
// returns, a slice of interfaces for anonymous returns and a struct for named
// returns.
func (_ConsumerChannel *ConsumerChannelRaw) Call(opts *bind.CallOpts, result *[]interface{}, method string, params ...interface{}) error {
	return _ConsumerChannel.Contract.ConsumerChannelCaller.contract.Call(opts, result, method, params...)
}

// Transfer initiates a plain transaction to move funds to the contract, calling
// its default method if one is available.
func (_ConsumerChannel *ConsumerChannelRaw) Transfer(opts *bind.TransactOpts) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.ConsumerChannelTransactor.contract.Transfer(opts)
}

// Transact invokes the (paid) contract method with params as input values.
func (_ConsumerChannel *ConsumerChannelRaw) Transact(opts *bind.TransactOpts, method string, params ...interface{}) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.ConsumerChannelTransactor.contract.Transact(opts, method, params...)
}

// Call invokes the (constant) contract method with params as input values and
// sets the output to result. The result type might be a single field for simple
// returns, a slice of interfaces for anonymous returns and a struct for named
// returns.
func (_ConsumerChannel *ConsumerChannelCallerRaw) Call(opts *bind.CallOpts, result *[]interface{}, method string, params ...interface{}) error {
	return _ConsumerChannel.Contract.contract.Call(opts, result, method, params...)
}

// Transfer initiates a plain transaction to move funds to the contract, calling
// its default method if one is available.
func (_ConsumerChannel *ConsumerChannelTransactorRaw) Transfer(opts *bind.TransactOpts) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.contract.Transfer(opts)
}

// Transact invokes the (paid) contract method with params as input values.
func (_ConsumerChannel *ConsumerChannelTransactorRaw) Transact(opts *bind.TransactOpts, method string, params ...interface{}) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.contract.Transact(opts, method, params...)
}

// ChannelId is a free data retrieval call binding the contract method 0xe2cee544.
//
// Solidity: function channelId() view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelCaller) ChannelId(opts *bind.CallOpts) ([32]byte, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "channelId")

	if err != nil {
		return *new([32]byte), err
	}

	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)

	return out0, err

}

// ChannelId is a free data retrieval call binding the contract method 0xe2cee544.
//
// Solidity: function channelId() view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelSession) ChannelId() ([32]byte, error) {
	return _ConsumerChannel.Contract.ChannelId(&_ConsumerChannel.CallOpts)
}

// ChannelId is a free data retrieval call binding the contract method 0xe2cee544.
//
// Solidity: function channelId() view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelCallerSession) ChannelId() ([32]byte, error) {
	return _ConsumerChannel.Contract.ChannelId(&_ConsumerChannel.CallOpts)
}

// ExitTimelock is a free data retrieval call binding the contract method 0xd1b35b2a.
//
// Solidity: function exitTimelock() view returns(uint64)
func (_ConsumerChannel *ConsumerChannelCaller) ExitTimelock(opts *bind.CallOpts) (uint64, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "exitTimelock")

	if err != nil {
		return *new(uint64), err
	}

	out0 := *abi.ConvertType(out[0], new(uint64)).(*uint64)

	return out0, err

}

// ExitTimelock is a free data retrieval call binding the contract method 0xd1b35b2a.
//
// Solidity: function exitTimelock() view returns(uint64)
func (_ConsumerChannel *ConsumerChannelSession) ExitTimelock() (uint64, error) {
	return _ConsumerChannel.Contract.ExitTimelock(&_ConsumerChannel.CallOpts)
}

// ExitTimelock is a free data retrieval call binding the contract method 0xd1b35b2a.
//
// Solidity: function exitTimelock() view returns(uint64)
func (_ConsumerChannel *ConsumerChannelCallerSession) ExitTimelock() (uint64, error) {
	return _ConsumerChannel.Contract.ExitTimelock(&_ConsumerChannel.CallOpts)
}

// ExitUnlockAt is a free data retrieval call binding the contract method 0x13a5951b.
//
// Solidity: function exitUnlockAt() view returns(uint64)
func (_ConsumerChannel *ConsumerChannelCaller) ExitUnlockAt(opts *bind.CallOpts) (uint64, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "exitUnlockAt")

	if err != nil {
		return *new(uint64), err
	}

	out0 := *abi.ConvertType(out[0], new(uint64)).(*uint64)

	return out0, err

}

// ExitUnlockAt is a free data retrieval call binding the contract method 0x13a5951b.
//
// Solidity: function exitUnlockAt() view returns(uint64)
func (_ConsumerChannel *ConsumerChannelSession) ExitUnlockAt() (uint64, error) {
	return _ConsumerChannel.Contract.ExitUnlockAt(&_ConsumerChannel.CallOpts)
}

// ExitUnlockAt is a free data retrieval call binding the contract method 0x13a5951b.
//
// Solidity: function exitUnlockAt() view returns(uint64)
func (_ConsumerChannel *ConsumerChannelCallerSession) ExitUnlockAt() (uint64, error) {
	return _ConsumerChannel.Contract.ExitUnlockAt(&_ConsumerChannel.CallOpts)
}

// Hermes is a free data retrieval call binding the contract method 0xd8092c92.
//
// Solidity: function hermes() view returns(address)
func (_ConsumerChannel *ConsumerChannelCaller) Hermes(opts *bind.CallOpts) (common.Address, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "hermes")

	if err != nil {
		return *new(common.Address), err
	}

	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)

	return out0, err

}

// Hermes is a free data retrieval call binding the contract method 0xd8092c92.
//
// Solidity: function hermes() view returns(address)
func (_ConsumerChannel *ConsumerChannelSession) Hermes() (common.Address, error) {
	return _ConsumerChannel.Contract.Hermes(&_ConsumerChannel.CallOpts)
}

// Hermes is a free data retrieval call binding the contract method 0xd8092c92.
//
// Solidity: function hermes() view returns(address)
func (_ConsumerChannel *ConsumerChannelCallerSession) Hermes() (common.Address, error) {
	return _ConsumerChannel.Contract.Hermes(&_ConsumerChannel.CallOpts)
}

// Identity is a free data retrieval call binding the contract method 0x2c159a1a.
//
// Solidity: function identity() view returns(address)
func (_ConsumerChannel *ConsumerChannelCaller) Identity(opts *bind.CallOpts) (common.Address, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "identity")

	if err != nil {
		return *new(common.Address), err
	}

	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)

	return out0, err

}

// Identity is a free data retrieval call binding the contract method 0x2c159a1a.
//
// Solidity: function identity() view returns(address)
func (_ConsumerChannel *ConsumerChannelSession) Identity() (common.Address, error) {
	return _ConsumerChannel.Contract.Identity(&_ConsumerChannel.CallOpts)
}

// Identity is a free data retrieval call binding the contract method 0x2c159a1a.
//
// Solidity: function identity() view returns(address)
func (_ConsumerChannel *ConsumerChannelCallerSession) Identity() (common.Address, error) {
	return _ConsumerChannel.Contract.Identity(&_ConsumerChannel.CallOpts)
}

// Nonce is a free data retrieval call binding the contract method 0xaffed0e0.
//
// Solidity: function nonce() view returns(uint96)
func (_ConsumerChannel *ConsumerChannelCaller) Nonce(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "nonce")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// Nonce is a free data retrieval call binding the contract method 0xaffed0e0.
//
// Solidity: function nonce() view returns(uint96)
func (_ConsumerChannel *ConsumerChannelSession) Nonce() (*big.Int, error) {
	return _ConsumerChannel.Contract.Nonce(&_ConsumerChannel.CallOpts)
}

// Nonce is a free data retrieval call binding the contract method 0xaffed0e0.
//
// Solidity: function nonce() view returns(uint96)
func (_ConsumerChannel *ConsumerChannelCallerSession) Nonce() (*big.Int, error) {
	return _ConsumerChannel.Contract.Nonce(&_ConsumerChannel.CallOpts)
}

// Registry is a free data retrieval call binding the contract method 0x7b103999.
//
// Solidity: function registry() view returns(address)
func (_ConsumerChannel *ConsumerChannelCaller) Registry(opts *bind.CallOpts) (common.Address, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "registry")

	if err != nil {
		return *new(common.Address), err
	}

	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)

	return out0, err

}

// Registry is a free data retrieval call binding the contract method 0x7b103999.
//
// Solidity: function registry() view returns(address)
func (_ConsumerChannel *ConsumerChannelSession) Registry() (common.Address, error) {
	return _ConsumerChannel.Contract.Registry(&_ConsumerChannel.CallOpts)
}

// Registry is a free data retrieval call binding the contract method 0x7b103999.
//
// Solidity: function registry() view returns(address)
func (_ConsumerChannel *ConsumerChannelCallerSession) Registry() (common.Address, error) {
	return _ConsumerChannel.Contract.Registry(&_ConsumerChannel.CallOpts)
}

// RequestExitDigest is a free data retrieval call binding the contract method 0x04c821bb.
//
// Solidity: function requestExitDigest(uint256 fee, uint256 nonce_) view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelCaller) RequestExitDigest(opts *bind.CallOpts, fee *big.Int, nonce_ *big.Int) ([32]byte, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "requestExitDigest", fee, nonce_)

	if err != nil {
		return *new([32]byte), err
	}

	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)

	return out0, err

}

// RequestExitDigest is a free data retrieval call binding the contract method 0x04c821bb.
//
// Solidity: function requestExitDigest(uint256 fee, uint256 nonce_) view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelSession) RequestExitDigest(fee *big.Int, nonce_ *big.Int) ([32]byte, error) {
	return _ConsumerChannel.Contract.RequestExitDigest(&_ConsumerChannel.CallOpts, fee, nonce_)
}

// RequestExitDigest is a free data retrieval call binding the contract method 0x04c821bb.
//
// Solidity: function requestExitDigest(uint256 fee, uint256 nonce_) view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelCallerSession) RequestExitDigest(fee *big.Int, nonce_ *big.Int) ([32]byte, error) {
	return _ConsumerChannel.Contract.RequestExitDigest(&_ConsumerChannel.CallOpts, fee, nonce_)
}

// Settled is a free data retrieval call binding the contract method 0x8f775839.
//
// Solidity: function settled() view returns(uint256)
func (_ConsumerChannel *ConsumerChannelCaller) Settled(opts *bind.CallOpts) (*big.Int, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "settled")

	if err != nil {
		return *new(*big.Int), err
	}

	out0 := *abi.ConvertType(out[0], new(*big.Int)).(**big.Int)

	return out0, err

}

// Settled is a free data retrieval call binding the contract method 0x8f775839.
//
// Solidity: function settled() view returns(uint256)
func (_ConsumerChannel *ConsumerChannelSession) Settled() (*big.Int, error) {
	return _ConsumerChannel.Contract.Settled(&_ConsumerChannel.CallOpts)
}

// Settled is a free data retrieval call binding the contract method 0x8f775839.
//
// Solidity: function settled() view returns(uint256)
func (_ConsumerChannel *ConsumerChannelCallerSession) Settled() (*big.Int, error) {
	return _ConsumerChannel.Contract.Settled(&_ConsumerChannel.CallOpts)
}

// Token is a free data retrieval call binding the contract method 0xfc0c546a.
//
// Solidity: function token() view returns(address)
func (_ConsumerChannel *ConsumerChannelCaller) Token(opts *bind.CallOpts) (common.Address, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "token")

	if err != nil {
		return *new(common.Address), err
	}

	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)

	return out0, err

}

// Token is a free data retrieval call binding the contract method 0xfc0c546a.
//
// Solidity: function token() view returns(address)
func (_ConsumerChannel *ConsumerChannelSession) Token() (common.Address, error) {
	return _ConsumerChannel.Contract.Token(&_ConsumerChannel.CallOpts)
}

// Token is a free data retrieval call binding the contract method 0xfc0c546a.
//
// Solidity: function token() view returns(address)
func (_ConsumerChannel *ConsumerChannelCallerSession) Token() (common.Address, error) {
	return _ConsumerChannel.Contract.Token(&_ConsumerChannel.CallOpts)
}

// WithdrawDigest is a free data retrieval call binding the contract method 0x4073a95b.
//
// Solidity: function withdrawDigest(uint256 amount, address to, uint256 fee, uint256 nonce_) view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelCaller) WithdrawDigest(opts *bind.CallOpts, amount *big.Int, to common.Address, fee *big.Int, nonce_ *big.Int) ([32]byte, error) {
	var out []interface{}
	err := _ConsumerChannel.contract.Call(opts, &out, "withdrawDigest", amount, to, fee, nonce_)

	if err != nil {
		return *new([32]byte), err
	}

	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)

	return out0, err

}

// WithdrawDigest is a free data retrieval call binding the contract method 0x4073a95b.
//
// Solidity: function withdrawDigest(uint256 amount, address to, uint256 fee, uint256 nonce_) view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelSession) WithdrawDigest(amount *big.Int, to common.Address, fee *big.Int, nonce_ *big.Int) ([32]byte, error) {
	return _ConsumerChannel.Contract.WithdrawDigest(&_ConsumerChannel.CallOpts, amount, to, fee, nonce_)
}

// WithdrawDigest is a free data retrieval call binding the contract method 0x4073a95b.
//
// Solidity: function withdrawDigest(uint256 amount, address to, uint256 fee, uint256 nonce_) view returns(bytes32)
func (_ConsumerChannel *ConsumerChannelCallerSession) WithdrawDigest(amount *big.Int, to common.Address, fee *big.Int, nonce_ *big.Int) ([32]byte, error) {
	return _ConsumerChannel.Contract.WithdrawDigest(&_ConsumerChannel.CallOpts, amount, to, fee, nonce_)
}

// FinalizeExit is a paid mutator transaction binding the contract method 0x07e8ec1f.
//
// Solidity: function finalizeExit() returns()
func (_ConsumerChannel *ConsumerChannelTransactor) FinalizeExit(opts *bind.TransactOpts) (*types.Transaction, error) {
	return _ConsumerChannel.contract.Transact(opts, "finalizeExit")
}

// FinalizeExit is a paid mutator transaction binding the contract method 0x07e8ec1f.
//
// Solidity: function finalizeExit() returns()
func (_ConsumerChannel *ConsumerChannelSession) FinalizeExit() (*types.Transaction, error) {
	return _ConsumerChannel.Contract.FinalizeExit(&_ConsumerChannel.TransactOpts)
}

// FinalizeExit is a paid mutator transaction binding the contract method 0x07e8ec1f.
//
// Solidity: function finalizeExit() returns()
func (_ConsumerChannel *ConsumerChannelTransactorSession) FinalizeExit() (*types.Transaction, error) {
	return _ConsumerChannel.Contract.FinalizeExit(&_ConsumerChannel.TransactOpts)
}

// Initialize is a paid mutator transaction binding the contract method 0xcf756fdf.
//
// Solidity: function initialize(address identity_, address hermes_, address feeTo, uint256 fee) returns()
func (_ConsumerChannel *ConsumerChannelTransactor) Initialize(opts *bind.TransactOpts, identity_ common.Address, hermes_ common.Address, feeTo common.Address, fee *big.Int) (*types.Transaction, error) {
	return _ConsumerChannel.contract.Transact(opts, "initialize", identity_, hermes_, feeTo, fee)
}

// Initialize is a paid mutator transaction binding the contract method 0xcf756fdf.
//
// Solidity: function initialize(address identity_, address hermes_, address feeTo, uint256 fee) returns()
func (_ConsumerChannel *ConsumerChannelSession) Initialize(identity_ common.Address, hermes_ common.Address, feeTo common.Address, fee *big.Int) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.Initialize(&_ConsumerChannel.TransactOpts, identity_, hermes_, feeTo, fee)
}

// Initialize is a paid mutator transaction binding the contract method 0xcf756fdf.
//
// Solidity: function initialize(address identity_, address hermes_, address feeTo, uint256 fee) returns()
func (_ConsumerChannel *ConsumerChannelTransactorSession) Initialize(identity_ common.Address, hermes_ common.Address, feeTo common.Address, fee *big.Int) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.Initialize(&_ConsumerChannel.TransactOpts, identity_, hermes_, feeTo, fee)
}

// PayFee is a paid mutator transaction binding the contract method 0x72746eaf.
//
// Solidity: function payFee(address to, uint256 fee) returns()
func (_ConsumerChannel *ConsumerChannelTransactor) PayFee(opts *bind.TransactOpts, to common.Address, fee *big.Int) (*types.Transaction, error) {
	return _ConsumerChannel.contract.Transact(opts, "payFee", to, fee)
}

// PayFee is a paid mutator transaction binding the contract method 0x72746eaf.
//
// Solidity: function payFee(address to, uint256 fee) returns()
func (_ConsumerChannel *ConsumerChannelSession) PayFee(to common.Address, fee *big.Int) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.PayFee(&_ConsumerChannel.TransactOpts, to, fee)
}

// PayFee is a paid mutator transaction binding the contract method 0x72746eaf.
//
// Solidity: function payFee(address to, uint256 fee) returns()
func (_ConsumerChannel *ConsumerChannelTransactorSession) PayFee(to common.Address, fee *big.Int) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.PayFee(&_ConsumerChannel.TransactOpts, to, fee)
}

// RequestExit is a paid mutator transaction binding the contract method 0x8dce28b7.
//
// Solidity: function requestExit(uint256 fee, uint96 nonce_, bytes identitySig) returns()
func (_ConsumerChannel *ConsumerChannelTransactor) RequestExit(opts *bind.TransactOpts, fee *big.Int, nonce_ *big.Int, identitySig []byte) (*types.Transaction, error) {
	return _ConsumerChannel.contract.Transact(opts, "requestExit", fee, nonce_, identitySig)
}

// RequestExit is a paid mutator transaction binding the contract method 0x8dce28b7.
//
// Solidity: function requestExit(uint256 fee, uint96 nonce_, bytes identitySig) returns()
func (_ConsumerChannel *ConsumerChannelSession) RequestExit(fee *big.Int, nonce_ *big.Int, identitySig []byte) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.RequestExit(&_ConsumerChannel.TransactOpts, fee, nonce_, identitySig)
}

// RequestExit is a paid mutator transaction binding the contract method 0x8dce28b7.
//
// Solidity: function requestExit(uint256 fee, uint96 nonce_, bytes identitySig) returns()
func (_ConsumerChannel *ConsumerChannelTransactorSession) RequestExit(fee *big.Int, nonce_ *big.Int, identitySig []byte) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.RequestExit(&_ConsumerChannel.TransactOpts, fee, nonce_, identitySig)
}

// SettlePromise is a paid mutator transaction binding the contract method 0x8e24280c.
//
// Solidity: function settlePromise(uint256 amount, uint256 fee, bytes32 hashlock, bytes32 preimage, bytes signature) returns()
func (_ConsumerChannel *ConsumerChannelTransactor) SettlePromise(opts *bind.TransactOpts, amount *big.Int, fee *big.Int, hashlock [32]byte, preimage [32]byte, signature []byte) (*types.Transaction, error) {
	return _ConsumerChannel.contract.Transact(opts, "settlePromise", amount, fee, hashlock, preimage, signature)
}

// SettlePromise is a paid mutator transaction binding the contract method 0x8e24280c.
//
// Solidity: function settlePromise(uint256 amount, uint256 fee, bytes32 hashlock, bytes32 preimage, bytes signature) returns()
func (_ConsumerChannel *ConsumerChannelSession) SettlePromise(amount *big.Int, fee *big.Int, hashlock [32]byte, preimage [32]byte, signature []byte) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.SettlePromise(&_ConsumerChannel.TransactOpts, amount, fee, hashlock, preimage, signature)
}

// SettlePromise is a paid mutator transaction binding the contract method 0x8e24280c.
//
// Solidity: function settlePromise(uint256 amount, uint256 fee, bytes32 hashlock, bytes32 preimage, bytes signature) returns()
func (_ConsumerChannel *ConsumerChannelTransactorSession) SettlePromise(amount *big.Int, fee *big.Int, hashlock [32]byte, preimage [32]byte, signature []byte) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.SettlePromise(&_ConsumerChannel.TransactOpts, amount, fee, hashlock, preimage, signature)
}

// Withdraw is a paid mutator transaction binding the contract method 0x21fb412b.
//
// Solidity: function withdraw(uint256 amount, address to, uint256 fee, uint96 nonce_, bytes identitySig, bytes hermesSig) returns()
func (_ConsumerChannel *ConsumerChannelTransactor) Withdraw(opts *bind.TransactOpts, amount *big.Int, to common.Address, fee *big.Int, nonce_ *big.Int, identitySig []byte, hermesSig []byte) (*types.Transaction, error) {
	return _ConsumerChannel.contract.Transact(opts, "withdraw", amount, to, fee, nonce_, identitySig, hermesSig)
}

// Withdraw is a paid mutator transaction binding the contract method 0x21fb412b.
//
// Solidity: function withdraw(uint256 amount, address to, uint256 fee, uint96 nonce_, bytes identitySig, bytes hermesSig) returns()
func (_ConsumerChannel *ConsumerChannelSession) Withdraw(amount *big.Int, to common.Address, fee *big.Int, nonce_ *big.Int, identitySig []byte, hermesSig []byte) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.Withdraw(&_ConsumerChannel.TransactOpts, amount, to, fee, nonce_, identitySig, hermesSig)
}

// Withdraw is a paid mutator transaction binding the contract method 0x21fb412b.
//
// Solidity: function withdraw(uint256 amount, address to, uint256 fee, uint96 nonce_, bytes identitySig, bytes hermesSig) returns()
func (_ConsumerChannel *ConsumerChannelTransactorSession) Withdraw(amount *big.Int, to common.Address, fee *big.Int, nonce_ *big.Int, identitySig []byte, hermesSig []byte) (*types.Transaction, error) {
	return _ConsumerChannel.Contract.Withdraw(&_ConsumerChannel.TransactOpts, amount, to, fee, nonce_, identitySig, hermesSig)
}

// ConsumerChannelExitFinalizedIterator is returned from FilterExitFinalized and is used to iterate over the raw logs and unpacked data for ExitFinalized events raised by the ConsumerChannel contract.
type ConsumerChannelExitFinalizedIterator struct {
	Event *ConsumerChannelExitFinalized // Event containing the contract specifics and raw log

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
func (it *ConsumerChannelExitFinalizedIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(ConsumerChannelExitFinalized)
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
		it.Event = new(ConsumerChannelExitFinalized)
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
func (it *ConsumerChannelExitFinalizedIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *ConsumerChannelExitFinalizedIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// ConsumerChannelExitFinalized represents a ExitFinalized event raised by the ConsumerChannel contract.
type ConsumerChannelExitFinalized struct {
	To     common.Address
	Amount *big.Int
	Raw    types.Log // Blockchain specific contextual infos
}

// FilterExitFinalized is a free log retrieval operation binding the contract event 0x57c534f99f4c3da574f051bf947481e43d9adef90b94c65d8027d2d2d00d5af0.
//
// Solidity: event ExitFinalized(address indexed to, uint256 amount)
func (_ConsumerChannel *ConsumerChannelFilterer) FilterExitFinalized(opts *bind.FilterOpts, to []common.Address) (*ConsumerChannelExitFinalizedIterator, error) {

	var toRule []interface{}
	for _, toItem := range to {
		toRule = append(toRule, toItem)
	}

	logs, sub, err := _ConsumerChannel.contract.FilterLogs(opts, "ExitFinalized", toRule)
	if err != nil {
		return nil, err
	}
	return &ConsumerChannelExitFinalizedIterator{contract: _ConsumerChannel.contract, event: "ExitFinalized", logs: logs, sub: sub}, nil
}

// WatchExitFinalized is a free log subscription operation binding the contract event 0x57c534f99f4c3da574f051bf947481e43d9adef90b94c65d8027d2d2d00d5af0.
//
// Solidity: event ExitFinalized(address indexed to, uint256 amount)
func (_ConsumerChannel *ConsumerChannelFilterer) WatchExitFinalized(opts *bind.WatchOpts, sink chan<- *ConsumerChannelExitFinalized, to []common.Address) (event.Subscription, error) {

	var toRule []interface{}
	for _, toItem := range to {
		toRule = append(toRule, toItem)
	}

	logs, sub, err := _ConsumerChannel.contract.WatchLogs(opts, "ExitFinalized", toRule)
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(ConsumerChannelExitFinalized)
				if err := _ConsumerChannel.contract.UnpackLog(event, "ExitFinalized", log); err != nil {
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

// ParseExitFinalized is a log parse operation binding the contract event 0x57c534f99f4c3da574f051bf947481e43d9adef90b94c65d8027d2d2d00d5af0.
//
// Solidity: event ExitFinalized(address indexed to, uint256 amount)
func (_ConsumerChannel *ConsumerChannelFilterer) ParseExitFinalized(log types.Log) (*ConsumerChannelExitFinalized, error) {
	event := new(ConsumerChannelExitFinalized)
	if err := _ConsumerChannel.contract.UnpackLog(event, "ExitFinalized", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// ConsumerChannelExitRequestedIterator is returned from FilterExitRequested and is used to iterate over the raw logs and unpacked data for ExitRequested events raised by the ConsumerChannel contract.
type ConsumerChannelExitRequestedIterator struct {
	Event *ConsumerChannelExitRequested // Event containing the contract specifics and raw log

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
func (it *ConsumerChannelExitRequestedIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(ConsumerChannelExitRequested)
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
		it.Event = new(ConsumerChannelExitRequested)
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
func (it *ConsumerChannelExitRequestedIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *ConsumerChannelExitRequestedIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// ConsumerChannelExitRequested represents a ExitRequested event raised by the ConsumerChannel contract.
type ConsumerChannelExitRequested struct {
	UnlockAt uint64
	Raw      types.Log // Blockchain specific contextual infos
}

// FilterExitRequested is a free log retrieval operation binding the contract event 0xefa66d5e2e6dd4f333d72d420813ee66710787e2c81471aa817a35f387dd8fe0.
//
// Solidity: event ExitRequested(uint64 unlockAt)
func (_ConsumerChannel *ConsumerChannelFilterer) FilterExitRequested(opts *bind.FilterOpts) (*ConsumerChannelExitRequestedIterator, error) {

	logs, sub, err := _ConsumerChannel.contract.FilterLogs(opts, "ExitRequested")
	if err != nil {
		return nil, err
	}
	return &ConsumerChannelExitRequestedIterator{contract: _ConsumerChannel.contract, event: "ExitRequested", logs: logs, sub: sub}, nil
}

// WatchExitRequested is a free log subscription operation binding the contract event 0xefa66d5e2e6dd4f333d72d420813ee66710787e2c81471aa817a35f387dd8fe0.
//
// Solidity: event ExitRequested(uint64 unlockAt)
func (_ConsumerChannel *ConsumerChannelFilterer) WatchExitRequested(opts *bind.WatchOpts, sink chan<- *ConsumerChannelExitRequested) (event.Subscription, error) {

	logs, sub, err := _ConsumerChannel.contract.WatchLogs(opts, "ExitRequested")
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(ConsumerChannelExitRequested)
				if err := _ConsumerChannel.contract.UnpackLog(event, "ExitRequested", log); err != nil {
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

// ParseExitRequested is a log parse operation binding the contract event 0xefa66d5e2e6dd4f333d72d420813ee66710787e2c81471aa817a35f387dd8fe0.
//
// Solidity: event ExitRequested(uint64 unlockAt)
func (_ConsumerChannel *ConsumerChannelFilterer) ParseExitRequested(log types.Log) (*ConsumerChannelExitRequested, error) {
	event := new(ConsumerChannelExitRequested)
	if err := _ConsumerChannel.contract.UnpackLog(event, "ExitRequested", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// ConsumerChannelPromiseSettledIterator is returned from FilterPromiseSettled and is used to iterate over the raw logs and unpacked data for PromiseSettled events raised by the ConsumerChannel contract.
type ConsumerChannelPromiseSettledIterator struct {
	Event *ConsumerChannelPromiseSettled // Event containing the contract specifics and raw log

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
func (it *ConsumerChannelPromiseSettledIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(ConsumerChannelPromiseSettled)
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
		it.Event = new(ConsumerChannelPromiseSettled)
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
func (it *ConsumerChannelPromiseSettledIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *ConsumerChannelPromiseSettledIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// ConsumerChannelPromiseSettled represents a PromiseSettled event raised by the ConsumerChannel contract.
type ConsumerChannelPromiseSettled struct {
	Paid     *big.Int
	Fee      *big.Int
	Settled  *big.Int
	Hashlock [32]byte
	Raw      types.Log // Blockchain specific contextual infos
}

// FilterPromiseSettled is a free log retrieval operation binding the contract event 0xf1f35d7f27f26a682bdc0337a847356cc2e0472adea660bb7d7ab5ac59535cda.
//
// Solidity: event PromiseSettled(uint256 paid, uint256 fee, uint256 settled, bytes32 hashlock)
func (_ConsumerChannel *ConsumerChannelFilterer) FilterPromiseSettled(opts *bind.FilterOpts) (*ConsumerChannelPromiseSettledIterator, error) {

	logs, sub, err := _ConsumerChannel.contract.FilterLogs(opts, "PromiseSettled")
	if err != nil {
		return nil, err
	}
	return &ConsumerChannelPromiseSettledIterator{contract: _ConsumerChannel.contract, event: "PromiseSettled", logs: logs, sub: sub}, nil
}

// WatchPromiseSettled is a free log subscription operation binding the contract event 0xf1f35d7f27f26a682bdc0337a847356cc2e0472adea660bb7d7ab5ac59535cda.
//
// Solidity: event PromiseSettled(uint256 paid, uint256 fee, uint256 settled, bytes32 hashlock)
func (_ConsumerChannel *ConsumerChannelFilterer) WatchPromiseSettled(opts *bind.WatchOpts, sink chan<- *ConsumerChannelPromiseSettled) (event.Subscription, error) {

	logs, sub, err := _ConsumerChannel.contract.WatchLogs(opts, "PromiseSettled")
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(ConsumerChannelPromiseSettled)
				if err := _ConsumerChannel.contract.UnpackLog(event, "PromiseSettled", log); err != nil {
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

// ParsePromiseSettled is a log parse operation binding the contract event 0xf1f35d7f27f26a682bdc0337a847356cc2e0472adea660bb7d7ab5ac59535cda.
//
// Solidity: event PromiseSettled(uint256 paid, uint256 fee, uint256 settled, bytes32 hashlock)
func (_ConsumerChannel *ConsumerChannelFilterer) ParsePromiseSettled(log types.Log) (*ConsumerChannelPromiseSettled, error) {
	event := new(ConsumerChannelPromiseSettled)
	if err := _ConsumerChannel.contract.UnpackLog(event, "PromiseSettled", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}

// ConsumerChannelWithdrawnIterator is returned from FilterWithdrawn and is used to iterate over the raw logs and unpacked data for Withdrawn events raised by the ConsumerChannel contract.
type ConsumerChannelWithdrawnIterator struct {
	Event *ConsumerChannelWithdrawn // Event containing the contract specifics and raw log

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
func (it *ConsumerChannelWithdrawnIterator) Next() bool {
	// If the iterator failed, stop iterating
	if it.fail != nil {
		return false
	}
	// If the iterator completed, deliver directly whatever's available
	if it.done {
		select {
		case log := <-it.logs:
			it.Event = new(ConsumerChannelWithdrawn)
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
		it.Event = new(ConsumerChannelWithdrawn)
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
func (it *ConsumerChannelWithdrawnIterator) Error() error {
	return it.fail
}

// Close terminates the iteration process, releasing any pending underlying
// resources.
func (it *ConsumerChannelWithdrawnIterator) Close() error {
	it.sub.Unsubscribe()
	return nil
}

// ConsumerChannelWithdrawn represents a Withdrawn event raised by the ConsumerChannel contract.
type ConsumerChannelWithdrawn struct {
	To     common.Address
	Amount *big.Int
	Nonce  *big.Int
	Raw    types.Log // Blockchain specific contextual infos
}

// FilterWithdrawn is a free log retrieval operation binding the contract event 0xa2353f5f3b762a1ca4ff44f29fc410162cd9aaa937736feb38521a989c466ef0.
//
// Solidity: event Withdrawn(address indexed to, uint256 amount, uint96 nonce)
func (_ConsumerChannel *ConsumerChannelFilterer) FilterWithdrawn(opts *bind.FilterOpts, to []common.Address) (*ConsumerChannelWithdrawnIterator, error) {

	var toRule []interface{}
	for _, toItem := range to {
		toRule = append(toRule, toItem)
	}

	logs, sub, err := _ConsumerChannel.contract.FilterLogs(opts, "Withdrawn", toRule)
	if err != nil {
		return nil, err
	}
	return &ConsumerChannelWithdrawnIterator{contract: _ConsumerChannel.contract, event: "Withdrawn", logs: logs, sub: sub}, nil
}

// WatchWithdrawn is a free log subscription operation binding the contract event 0xa2353f5f3b762a1ca4ff44f29fc410162cd9aaa937736feb38521a989c466ef0.
//
// Solidity: event Withdrawn(address indexed to, uint256 amount, uint96 nonce)
func (_ConsumerChannel *ConsumerChannelFilterer) WatchWithdrawn(opts *bind.WatchOpts, sink chan<- *ConsumerChannelWithdrawn, to []common.Address) (event.Subscription, error) {

	var toRule []interface{}
	for _, toItem := range to {
		toRule = append(toRule, toItem)
	}

	logs, sub, err := _ConsumerChannel.contract.WatchLogs(opts, "Withdrawn", toRule)
	if err != nil {
		return nil, err
	}
	return event.NewSubscription(func(quit <-chan struct{}) error {
		defer sub.Unsubscribe()
		for {
			select {
			case log := <-logs:
				// New log arrived, parse the event and forward to the user
				event := new(ConsumerChannelWithdrawn)
				if err := _ConsumerChannel.contract.UnpackLog(event, "Withdrawn", log); err != nil {
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

// ParseWithdrawn is a log parse operation binding the contract event 0xa2353f5f3b762a1ca4ff44f29fc410162cd9aaa937736feb38521a989c466ef0.
//
// Solidity: event Withdrawn(address indexed to, uint256 amount, uint96 nonce)
func (_ConsumerChannel *ConsumerChannelFilterer) ParseWithdrawn(log types.Log) (*ConsumerChannelWithdrawn, error) {
	event := new(ConsumerChannelWithdrawn)
	if err := _ConsumerChannel.contract.UnpackLog(event, "Withdrawn", log); err != nil {
		return nil, err
	}
	event.Raw = log
	return event, nil
}
