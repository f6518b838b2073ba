// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The part of ERC-20 the openmyst contracts use.
interface IERC20Min {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
    function balanceOf(address who) external view returns (uint256);
}

/// @notice The part of the Registry channels and hermes contracts read.
interface IRegistryView {
    /// @notice Payout address of a registered identity; zero when unregistered.
    function beneficiary(address identity) external view returns (address);
    /// @notice Beneficiary of `provider` and up to `net` of its registration
    /// debt, taken for `transactor` (callable by the hermes of `hermesOperator` only).
    function settlementPayee(address provider, uint256 net, address hermesOperator)
        external
        returns (address beneficiary, address transactor, uint256 taken);
}

/// @notice The part of a Hermes contract a consumer channel reads.
interface IHermesView {
    function operator() external view returns (address);
}
