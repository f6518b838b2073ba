// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Sig} from "./Sig.sol";
import {IERC20Min, IRegistryView} from "./Interfaces.sol";

/// @title Hermes: one payment hub's contract, holding its stake, provider stakes and collected MYST.
/// @notice Deployed once as the implementation; each hermes is an EIP-1167
/// proxy created by Registry.registerHermes. The operator key signs
/// cumulative promises on provider channels; providers settle them here to
/// their beneficiary.
contract Hermes {
    bytes32 internal constant DECREASE_STAKE = "myst.DecreaseStake";
    /// @notice Highest hermes fee: 20%.
    uint16 public constant MAX_FEE_BPS = 2000;

    /// @notice Lifecycle of a hermes.
    /// Active: normal. Penalty: its balance fell below hermes stake + provider
    /// stakes; it earns no fee and cannot withdraw until resolvePenalty().
    enum Status {
        Uninitialized,
        Active,
        Penalty
    }

    struct Channel {
        uint128 settled;
        uint96 stake;
        uint32 nonce;
    }

    /// @notice The Registry that created this hermes.
    address public immutable registry;
    /// @notice The MYST token.
    IERC20Min public immutable token;
    /// @notice Seconds before a fee change takes effect.
    uint64 public immutable feeNoticeDelay;

    /// @notice Key that signs provider promises and manages this hermes.
    address public operator;
    uint16 internal feeBps;
    /// @notice Current status.
    Status public status;
    /// @notice Fee announced by setFee, in effect from feeEffectiveAt.
    uint16 public pendingFeeBps;
    /// @notice When pendingFeeBps takes effect; 0 when no change is pending.
    uint40 public feeEffectiveAt;

    /// @notice The operator's stake (must stay covered by the balance).
    uint128 public hermesStake;
    /// @notice Sum of all provider channel stakes.
    uint128 public totalProviderStake;
    /// @notice Settlement limit of every channel, and the least non-zero stake.
    uint128 public minChannelStake;
    /// @notice Highest provider channel stake.
    uint128 public maxChannelStake;

    mapping(bytes32 => Channel) internal channels;

    event ProviderSettled(
        address indexed provider, bytes32 indexed channelId, uint256 paid, uint256 hermesFee, uint256 fee, bytes32 hashlock
    );
    event StakeChanged(address indexed provider, uint256 stake);
    event FeeAnnounced(uint16 feeBps, uint40 effectiveAt);
    event PenaltyStarted(uint256 balance, uint256 required);
    event PenaltyResolved(uint256 balance);
    event Withdrawn(address indexed to, uint256 amount);

    error NotRegistry();
    error NotOperator();
    error AlreadyInitialized();
    error NotActive(Status status);
    error BadPreimage();
    error FeeAboveAmount(uint256 fee, uint256 amount);
    error NothingToSettle(uint256 amount, uint256 settled);
    error AmountTooLarge(uint256 amount);
    error ZeroChannelLimit();
    error InsufficientHermesBalance(uint256 available);
    error NotRegistered(address identity);
    error FeeTooHigh(uint16 feeBps, uint16 max);
    error StakeOutOfRange(uint256 stake, uint256 min, uint256 max);
    error BadNonce(uint256 got, uint256 want);
    error StillUndercovered(uint256 balance, uint256 required);
    error ZeroAddress();

    constructor(address registry_, IERC20Min token_, uint64 feeNoticeDelay_) {
        registry = registry_;
        token = token_;
        feeNoticeDelay = feeNoticeDelay_;
        operator = address(1); // the implementation itself is never a hermes
    }

    /// @notice Called once by the Registry after creating the proxy and moving the stake in.
    function initialize(address operator_, uint128 stake, uint16 feeBps_, uint128 minStake, uint128 maxStake) external {
        if (msg.sender != registry) revert NotRegistry();
        if (operator != address(0)) revert AlreadyInitialized();
        if (feeBps_ > MAX_FEE_BPS) revert FeeTooHigh(feeBps_, MAX_FEE_BPS);
        if (minStake > maxStake || maxStake > type(uint96).max) revert StakeOutOfRange(minStake, minStake, maxStake);
        operator = operator_;
        feeBps = feeBps_;
        status = Status.Active;
        hermesStake = stake;
        minChannelStake = minStake;
        maxChannelStake = maxStake;
    }

    /// @notice keccak256(provider || this): the provider channel id promises carry.
    function channelId(address provider) public view returns (bytes32) {
        return keccak256(abi.encodePacked(provider, address(this)));
    }

    /// @notice A provider channel's settled amount, stake and last stake nonce.
    function channel(address provider) external view returns (uint256 settled, uint256 stake, uint256 nonce) {
        Channel memory c = channels[channelId(provider)];
        return (c.settled, c.stake, c.nonce);
    }

    /// @notice Fee (basis points) applied to settlements now.
    function fee() public view returns (uint16) {
        uint40 at = feeEffectiveAt;
        if (at != 0 && block.timestamp >= at) return pendingFeeBps;
        return feeBps;
    }

    /// @notice MYST the operator may withdraw: balance above hermes and provider stakes.
    function availableBalance() public view returns (uint256) {
        uint256 bal = token.balanceOf(address(this));
        uint256 locked = uint256(hermesStake) + totalProviderStake;
        return bal > locked ? bal - locked : 0;
    }

    /// @notice Pays the provider's beneficiary (amount - settled) for a promise
    /// signed by the operator, given the hashlock's preimage, capped by the
    /// channel limit max(stake, minChannelStake) and by the balance not
    /// belonging to provider stakes; minus the hermes fee and the transactor
    /// fee `fee` (paid to the caller). Anyone may call.
    function settlePromise(
        address provider,
        uint256 amount,
        uint256 fee_,
        bytes32 hashlock,
        bytes32 preimage,
        bytes calldata signature
    ) external {
        Status st = status;
        if (st == Status.Uninitialized) revert NotActive(st);
        bytes32 cid = keccak256(abi.encodePacked(provider, address(this)));
        Sig.check(Sig.promiseDigest(block.chainid, cid, amount, fee_, hashlock), signature, operator);
        if (keccak256(abi.encodePacked(preimage)) != hashlock) revert BadPreimage();
        if (fee_ > amount) revert FeeAboveAmount(fee_, amount);
        if (amount > type(uint128).max) revert AmountTooLarge(amount);
        Channel storage c = channels[cid];
        uint256 s = c.settled;
        if (amount <= s) revert NothingToSettle(amount, s);
        uint256 paid = amount - s;
        uint256 limit = c.stake;
        uint256 minStake = minChannelStake;
        if (limit < minStake) limit = minStake;
        if (limit == 0) revert ZeroChannelLimit();
        if (paid > limit) paid = limit;
        uint256 bal = token.balanceOf(address(this));
        uint256 tps = totalProviderStake;
        uint256 avail = bal > tps ? bal - tps : 0;
        if (paid > avail) paid = avail;
        if (paid == 0) revert InsufficientHermesBalance(avail);
        uint256 hermesFee = st == Status.Penalty ? 0 : paid * fee() / 10000;
        if (fee_ + hermesFee > paid) revert FeeAboveAmount(fee_ + hermesFee, paid);
        uint256 net = paid - hermesFee - fee_;
        (address to, address debtTo, uint256 debt) = IRegistryView(registry).settlementPayee(provider, net, operator);
        if (to == address(0)) revert NotRegistered(provider);
        c.settled = uint128(s + paid);
        token.transfer(to, net - debt);
        if (fee_ > 0) token.transfer(msg.sender, fee_);
        if (debt > 0) token.transfer(debtTo, debt);
        emit ProviderSettled(provider, cid, paid, hermesFee, fee_, hashlock);
        uint256 required = uint256(hermesStake) + tps;
        uint256 after_ = bal - (paid - hermesFee);
        if (after_ < required && st == Status.Active) {
            status = Status.Penalty;
            emit PenaltyStarted(after_, required);
        }
    }

    /// @notice Adds stake to a registered provider's channel, taken from the caller
    /// (approve first). The resulting stake must be within [minChannelStake, maxChannelStake].
    function increaseStake(address provider, uint96 amount) external {
        if (IRegistryView(registry).beneficiary(provider) == address(0)) revert NotRegistered(provider);
        Channel storage c = channels[channelId(provider)];
        uint256 ns = uint256(c.stake) + amount;
        if (ns < minChannelStake || ns > maxChannelStake) revert StakeOutOfRange(ns, minChannelStake, maxChannelStake);
        c.stake = uint96(ns);
        totalProviderStake += amount;
        token.transferFrom(msg.sender, address(this), amount);
        emit StakeChanged(provider, ns);
    }

    /// @notice Digest a provider signs to take `amount` of its stake back.
    function decreaseStakeDigest(address provider, uint256 amount, uint256 fee_, uint256 nonce)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(block.chainid, address(this), DECREASE_STAKE, provider, amount, fee_, nonce));
    }

    /// @notice Returns `amount` of a provider's stake, minus the transactor fee
    /// `fee` (paid to the caller), to its beneficiary, with the provider's
    /// signature. The remaining stake must be 0 or at least minChannelStake.
    function decreaseStake(address provider, uint96 amount, uint256 fee_, uint32 nonce, bytes calldata signature)
        external
    {
        Channel storage c = channels[channelId(provider)];
        uint32 want = c.nonce + 1;
        if (nonce != want) revert BadNonce(nonce, want);
        Sig.check(decreaseStakeDigest(provider, amount, fee_, nonce), signature, provider);
        if (fee_ > amount) revert FeeAboveAmount(fee_, amount);
        if (amount > c.stake) revert StakeOutOfRange(amount, 0, c.stake);
        uint256 ns = c.stake - amount;
        if (ns != 0 && ns < minChannelStake) revert StakeOutOfRange(ns, minChannelStake, maxChannelStake);
        c.stake = uint96(ns);
        c.nonce = nonce;
        totalProviderStake -= amount;
        token.transfer(IRegistryView(registry).beneficiary(provider), amount - fee_);
        if (fee_ > 0) token.transfer(msg.sender, fee_);
        emit StakeChanged(provider, ns);
    }

    /// @notice Announces a new fee; it applies after feeNoticeDelay seconds.
    function setFee(uint16 newFeeBps) external {
        if (msg.sender != operator) revert NotOperator();
        if (newFeeBps > MAX_FEE_BPS) revert FeeTooHigh(newFeeBps, MAX_FEE_BPS);
        feeBps = fee();
        uint40 at = uint40(block.timestamp + feeNoticeDelay);
        pendingFeeBps = newFeeBps;
        feeEffectiveAt = at;
        emit FeeAnnounced(newFeeBps, at);
    }

    /// @notice Operator takes collected MYST above the stakes. Not in penalty.
    function withdraw(address to, uint256 amount) external {
        if (msg.sender != operator) revert NotOperator();
        if (status != Status.Active) revert NotActive(status);
        if (to == address(0)) revert ZeroAddress();
        uint256 avail = availableBalance();
        if (amount > avail) revert InsufficientHermesBalance(avail);
        token.transfer(to, amount);
        emit Withdrawn(to, amount);
    }

    /// @notice Leaves the penalty state once the balance covers the stakes again. Anyone may call.
    function resolvePenalty() external {
        if (status != Status.Penalty) revert NotActive(status);
        uint256 bal = token.balanceOf(address(this));
        uint256 required = uint256(hermesStake) + totalProviderStake;
        if (bal < required) revert StillUndercovered(bal, required);
        status = Status.Active;
        emit PenaltyResolved(bal);
    }
}
