// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Sig} from "./Sig.sol";
import {IERC20Min, IRegistryView, IHermesView} from "./Interfaces.sol";

/// @title ConsumerChannel: a consumer's MYST, spent by cumulative promises to one hermes.
/// @notice Deployed once as the implementation; every consumer gets an
/// EIP-1167 minimal proxy of it, created by the Registry with CREATE2 so the
/// address (the top-up address) is known before registration.
contract ConsumerChannel {
    bytes32 internal constant WITHDRAW = "myst.ChannelWithdraw";
    bytes32 internal constant REQUEST_EXIT = "myst.ChannelRequestExit";

    /// @notice The Registry that creates channels and holds beneficiaries.
    address public immutable registry;
    /// @notice The MYST token.
    IERC20Min public immutable token;
    /// @notice Seconds between requestExit and finalizeExit.
    uint64 public immutable exitTimelock;

    /// @notice The consumer identity that signs promises on this channel.
    address public identity;
    /// @notice When a unilateral exit may be finalized (unix seconds); 0 when none is pending.
    uint64 public exitUnlockAt;
    /// @notice The Hermes contract paid by settled promises.
    address public hermes;
    /// @notice Last used nonce of withdraw/requestExit messages.
    uint96 public nonce;
    /// @notice Cumulative amount settled to the hermes.
    uint256 public settled;

    event PromiseSettled(uint256 paid, uint256 fee, uint256 settled, bytes32 hashlock);
    event Withdrawn(address indexed to, uint256 amount, uint96 nonce);
    event ExitRequested(uint64 unlockAt);
    event ExitFinalized(address indexed to, uint256 amount);

    error NotRegistry();
    error AlreadyInitialized();
    error NotInitialized();
    error BadPreimage();
    error FeeAboveAmount(uint256 fee, uint256 amount);
    error NothingToSettle(uint256 amount, uint256 settled);
    error ChannelEmpty();
    error BadNonce(uint256 got, uint256 want);
    error ExitAlreadyRequested(uint64 unlockAt);
    error ExitNotRequested();
    error ExitLocked(uint64 unlockAt, uint256 now_);
    error ZeroAddress();

    constructor(address registry_, IERC20Min token_, uint64 exitTimelock_) {
        registry = registry_;
        token = token_;
        exitTimelock = exitTimelock_;
        identity = address(1); // the implementation itself is never a channel
    }

    /// @notice Called once by the Registry right after creating the proxy;
    /// pays the registration transactor fee out of the pre-funded balance.
    function initialize(address identity_, address hermes_, address feeTo, uint256 fee) external {
        if (msg.sender != registry) revert NotRegistry();
        if (identity != address(0)) revert AlreadyInitialized();
        identity = identity_;
        hermes = hermes_;
        if (fee > 0) token.transfer(feeTo, fee);
    }

    /// @notice The channel id promises on this channel carry: this address, left-padded.
    function channelId() public view returns (bytes32) {
        return bytes32(uint256(uint160(address(this))));
    }

    /// @notice Pays the hermes (amount - settled), capped by the balance, for a
    /// promise signed by the identity, given the hashlock's preimage. Anyone may
    /// call; `fee` goes to the caller out of the paid amount.
    function settlePromise(uint256 amount, uint256 fee, bytes32 hashlock, bytes32 preimage, bytes calldata signature)
        external
    {
        address id = identity;
        if (id == address(0)) revert NotInitialized();
        Sig.check(Sig.promiseDigest(block.chainid, channelId(), amount, fee, hashlock), signature, id);
        if (keccak256(abi.encodePacked(preimage)) != hashlock) revert BadPreimage();
        if (fee > amount) revert FeeAboveAmount(fee, amount);
        uint256 s = settled;
        if (amount <= s) revert NothingToSettle(amount, s);
        uint256 paid = amount - s;
        uint256 bal = token.balanceOf(address(this));
        if (bal == 0) revert ChannelEmpty();
        if (paid > bal) paid = bal;
        if (fee > paid) revert FeeAboveAmount(fee, paid);
        s += paid;
        settled = s;
        token.transfer(hermes, paid - fee);
        if (fee > 0) token.transfer(msg.sender, fee);
        emit PromiseSettled(paid, fee, s, hashlock);
    }

    /// @notice Digest both the identity and the hermes operator sign to withdraw at once.
    function withdrawDigest(uint256 amount, address to, uint256 fee, uint256 nonce_) public view returns (bytes32) {
        return keccak256(abi.encodePacked(block.chainid, address(this), WITHDRAW, amount, to, fee, nonce_));
    }

    /// @notice Cooperative exit: withdraws `amount` to `to` at once (and `fee`
    /// to the caller), with the identity's and the hermes operator's
    /// signatures. Cancels a pending exit.
    function withdraw(
        uint256 amount,
        address to,
        uint256 fee,
        uint96 nonce_,
        bytes calldata identitySig,
        bytes calldata hermesSig
    ) external {
        if (to == address(0)) revert ZeroAddress();
        uint96 want = nonce + 1;
        if (nonce_ != want) revert BadNonce(nonce_, want);
        bytes32 d = withdrawDigest(amount, to, fee, nonce_);
        Sig.check(d, identitySig, identity);
        Sig.check(d, hermesSig, IHermesView(hermes).operator());
        nonce = nonce_;
        exitUnlockAt = 0;
        token.transfer(to, amount);
        if (fee > 0) token.transfer(msg.sender, fee);
        emit Withdrawn(to, amount, nonce_);
    }

    /// @notice Digest the identity signs to start a unilateral exit.
    function requestExitDigest(uint256 fee, uint256 nonce_) public view returns (bytes32) {
        return keccak256(abi.encodePacked(block.chainid, address(this), REQUEST_EXIT, fee, nonce_));
    }

    /// @notice Starts a unilateral exit, paying `fee` to the caller; the hermes
    /// can still settle until exitUnlockAt.
    function requestExit(uint256 fee, uint96 nonce_, bytes calldata identitySig) external {
        uint64 u = exitUnlockAt;
        if (u != 0) revert ExitAlreadyRequested(u);
        uint96 want = nonce + 1;
        if (nonce_ != want) revert BadNonce(nonce_, want);
        Sig.check(requestExitDigest(fee, nonce_), identitySig, identity);
        nonce = nonce_;
        u = uint64(block.timestamp) + exitTimelock;
        exitUnlockAt = u;
        if (fee > 0) token.transfer(msg.sender, fee);
        emit ExitRequested(u);
    }

    /// @notice Pays a transactor fee for an identity-signed Registry call
    /// (the Registry checked the signature). Only the Registry.
    function payFee(address to, uint256 fee) external {
        if (msg.sender != registry) revert NotRegistry();
        token.transfer(to, fee);
    }

    /// @notice After the timelock, pays the whole remaining balance to the
    /// identity's beneficiary. Anyone may call.
    function finalizeExit() external {
        uint64 u = exitUnlockAt;
        if (u == 0) revert ExitNotRequested();
        if (block.timestamp < u) revert ExitLocked(u, block.timestamp);
        exitUnlockAt = 0;
        address to = IRegistryView(registry).beneficiary(identity);
        uint256 bal = token.balanceOf(address(this));
        if (bal > 0) token.transfer(to, bal);
        emit ExitFinalized(to, bal);
    }
}
