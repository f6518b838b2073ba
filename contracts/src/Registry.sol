// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Sig} from "./Sig.sol";
import {IERC20Min} from "./Interfaces.sol";
import {ConsumerChannel} from "./ConsumerChannel.sol";
import {Hermes} from "./Hermes.sol";

/// @title Registry: identities, their beneficiaries and channels, and hermes hubs.
/// @notice Calls acting for an identity carry the identity's signature over
/// the chain id, this address, an action tag and every parameter, so anyone
/// (a transactor) may submit them. Channels and hermes contracts are EIP-1167
/// minimal proxies created with CREATE2 (see docs/protocol.md for addresses).
contract Registry {
    bytes32 internal constant REGISTER = "myst.RegisterIdentity";
    bytes32 internal constant SET_BENEFICIARY = "myst.SetBeneficiary";
    bytes32 internal constant OPEN_CHANNEL = "myst.OpenChannel";
    bytes32 internal constant REGISTER_DEFERRED = "myst.RegisterDeferred";

    /// @dev One slot: settlements read it once; `indebted` says whether
    /// debts[identity] must be read too.
    struct Identity {
        address beneficiary;
        uint88 nonce;
        bool indebted;
    }

    /// @notice The MYST token.
    IERC20Min public immutable token;
    /// @notice Implementation every consumer channel proxy delegates to.
    address public immutable channelImplementation;
    /// @notice Implementation every hermes proxy delegates to.
    address public immutable hermesImplementation;
    /// @notice Least stake a hermes registers with.
    uint256 public immutable minHermesStake;

    /// @notice A registration fee owed to the transactor that registered an
    /// identity with nothing in its channel, paid from its first provider
    /// settlements.
    struct Debt {
        address transactor;
        uint96 fee;
    }

    mapping(address => Identity) internal identities;
    mapping(address => Debt) internal debts;
    /// @notice True for hermes contracts created by this registry.
    mapping(address => bool) public isHermes;

    event IdentityRegistered(address indexed identity, address indexed hermes, address channel, address beneficiary);
    event ChannelOpened(address indexed identity, address indexed hermes, address channel);
    event BeneficiaryChanged(address indexed identity, address beneficiary, uint96 nonce);
    event HermesRegistered(address indexed operator, address hermes, uint256 stake, uint16 feeBps);
    event RegistrationDebtPaid(address indexed identity, address indexed transactor, uint256 amount);

    error AlreadyRegistered(address identity);
    error NotRegistered(address identity);
    error UnknownHermes(address hermes);
    error HermesExists(address hermes);
    error HermesStakeTooLow(uint256 stake, uint256 min);
    error BadNonce(uint256 got, uint256 want);
    error ZeroAddress();
    error CreateFailed();
    error ChannelExists(address channel);

    constructor(IERC20Min token_, uint256 minHermesStake_, uint64 exitTimelock, uint64 feeNoticeDelay) {
        token = token_;
        minHermesStake = minHermesStake_;
        channelImplementation = address(new ConsumerChannel(address(this), token_, exitTimelock));
        hermesImplementation = address(new Hermes(address(this), token_, feeNoticeDelay));
    }

    // ---- hermes ----

    /// @notice Registers the caller as a hermes operator: creates its Hermes
    /// proxy (salt = operator), moves `stake` MYST from the caller into it
    /// (approve the registry first) and initializes it.
    function registerHermes(uint128 stake, uint16 feeBps, uint128 minChannelStake, uint128 maxChannelStake)
        external
        returns (address hermes)
    {
        if (stake < minHermesStake) revert HermesStakeTooLow(stake, minHermesStake);
        bytes32 salt = bytes32(uint256(uint160(msg.sender)));
        hermes = _clone(hermesImplementation, salt, true);
        isHermes[hermes] = true;
        token.transferFrom(msg.sender, hermes, stake);
        Hermes(hermes).initialize(msg.sender, stake, feeBps, minChannelStake, maxChannelStake);
        emit HermesRegistered(msg.sender, hermes, stake, feeBps);
    }

    /// @notice Address of the Hermes contract of `operator` (whether registered or not).
    function hermesAddress(address operator) external view returns (address) {
        return _predict(hermesImplementation, bytes32(uint256(uint160(operator))));
    }

    // ---- identities ----

    /// @notice Digest an identity signs to register.
    function registerDigest(address identity, address hermes, uint256 fee, address beneficiary_)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(block.chainid, address(this), REGISTER, identity, hermes, fee, beneficiary_));
    }

    /// @notice Registers `identity` with `hermes`: records its beneficiary and
    /// creates its consumer channel, paying `fee` MYST from the channel's
    /// (pre-funded) balance to the caller.
    function registerIdentity(address identity, address hermes, uint256 fee, address beneficiary_, bytes calldata sig)
        external
        returns (address channel)
    {
        if (identity == address(0) || beneficiary_ == address(0)) revert ZeroAddress();
        if (!isHermes[hermes]) revert UnknownHermes(hermes);
        Identity storage id = identities[identity];
        if (id.beneficiary != address(0)) revert AlreadyRegistered(identity);
        Sig.check(registerDigest(identity, hermes, fee, beneficiary_), sig, identity);
        id.beneficiary = beneficiary_;
        channel = _clone(channelImplementation, keccak256(abi.encodePacked(identity, hermes)), false);
        ConsumerChannel(channel).initialize(identity, hermes, msg.sender, fee);
        emit IdentityRegistered(identity, hermes, channel, beneficiary_);
    }

    /// @notice Digest an identity signs to register now and owe `fee` to the
    /// caller, paid from its first provider settlements.
    function registerDeferredDigest(address identity, address hermes, uint256 fee, address beneficiary_)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encodePacked(block.chainid, address(this), REGISTER_DEFERRED, identity, hermes, fee, beneficiary_)
        );
    }

    /// @notice Registers `identity` like registerIdentity, but pays nothing
    /// now: `fee` is recorded as owed to the caller and taken by a hermes
    /// from the identity's provider settlements (settlementPayee).
    function registerIdentityDeferred(
        address identity,
        address hermes,
        uint96 fee,
        address beneficiary_,
        bytes calldata sig
    ) external returns (address channel) {
        if (identity == address(0) || beneficiary_ == address(0)) revert ZeroAddress();
        if (!isHermes[hermes]) revert UnknownHermes(hermes);
        Identity storage id = identities[identity];
        if (id.beneficiary != address(0)) revert AlreadyRegistered(identity);
        Sig.check(registerDeferredDigest(identity, hermes, fee, beneficiary_), sig, identity);
        id.beneficiary = beneficiary_;
        if (fee > 0) {
            debts[identity] = Debt(msg.sender, fee);
            id.indebted = true;
        }
        channel = _clone(channelImplementation, keccak256(abi.encodePacked(identity, hermes)), false);
        ConsumerChannel(channel).initialize(identity, hermes, msg.sender, 0);
        emit IdentityRegistered(identity, hermes, channel, beneficiary_);
    }

    /// @notice The registration fee `identity` still owes and to whom.
    function registrationDebt(address identity) external view returns (address transactor, uint256 fee) {
        Debt memory d = debts[identity];
        return (d.transactor, d.fee);
    }

    /// @notice Called by a hermes settling `provider`'s promise that pays
    /// `net` to the provider: returns the beneficiary and takes up to `net`
    /// of the provider's registration debt, to be paid to `transactor`.
    /// Only the hermes of `hermesOperator` may call it (its CREATE2
    /// address is checked instead of reading isHermes: cheaper).
    function settlementPayee(address provider, uint256 net, address hermesOperator)
        external
        returns (address beneficiary_, address transactor, uint256 taken)
    {
        if (_predict(hermesImplementation, bytes32(uint256(uint160(hermesOperator)))) != msg.sender) {
            revert UnknownHermes(msg.sender);
        }
        Identity storage id = identities[provider];
        beneficiary_ = id.beneficiary;
        if (!id.indebted) return (beneficiary_, address(0), 0);
        Debt storage d = debts[provider];
        uint256 owed = d.fee;
        transactor = d.transactor;
        taken = owed < net ? owed : net;
        if (taken == owed) {
            delete debts[provider];
            id.indebted = false;
        } else {
            d.fee = uint96(owed - taken);
        }
        emit RegistrationDebtPaid(provider, transactor, taken);
    }

    /// @notice Digest a registered identity signs to open a channel with another hermes.
    function openChannelDigest(address identity, address hermes, uint256 fee) public view returns (bytes32) {
        return keccak256(abi.encodePacked(block.chainid, address(this), OPEN_CHANNEL, identity, hermes, fee));
    }

    /// @notice Creates a registered identity's consumer channel with one more
    /// hermes, paying `fee` from that (pre-funded) channel to the caller.
    /// Each (identity, hermes) channel is created once, so the signature
    /// cannot be replayed.
    function openChannel(address identity, address hermes, uint256 fee, bytes calldata sig)
        external
        returns (address channel)
    {
        if (!isHermes[hermes]) revert UnknownHermes(hermes);
        if (identities[identity].beneficiary == address(0)) revert NotRegistered(identity);
        bytes32 salt = keccak256(abi.encodePacked(identity, hermes));
        address want = _predict(channelImplementation, salt);
        if (want.code.length != 0) revert ChannelExists(want);
        Sig.check(openChannelDigest(identity, hermes, fee), sig, identity);
        channel = _clone(channelImplementation, salt, false);
        ConsumerChannel(channel).initialize(identity, hermes, msg.sender, fee);
        emit ChannelOpened(identity, hermes, channel);
    }

    /// @notice Digest an identity signs to change its beneficiary.
    function beneficiaryDigest(address identity, address beneficiary_, address hermes, uint256 fee, uint256 nonce)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encodePacked(block.chainid, address(this), SET_BENEFICIARY, identity, beneficiary_, hermes, fee, nonce)
        );
    }

    /// @notice Changes an identity's payout address; nonce must be the last
    /// one + 1. A non-zero `fee` is paid to the caller from the identity's
    /// channel with `hermes`.
    function setBeneficiary(
        address identity,
        address beneficiary_,
        address hermes,
        uint256 fee,
        uint96 nonce,
        bytes calldata sig
    ) external {
        if (beneficiary_ == address(0)) revert ZeroAddress();
        Identity storage id = identities[identity];
        if (id.beneficiary == address(0)) revert NotRegistered(identity);
        uint96 want = uint96(id.nonce) + 1;
        if (nonce != want) revert BadNonce(nonce, want);
        Sig.check(beneficiaryDigest(identity, beneficiary_, hermes, fee, nonce), sig, identity);
        id.beneficiary = beneficiary_;
        id.nonce = uint88(nonce);
        if (fee > 0) {
            address ch = _predict(channelImplementation, keccak256(abi.encodePacked(identity, hermes)));
            if (ch.code.length == 0) revert UnknownHermes(hermes);
            ConsumerChannel(ch).payFee(msg.sender, fee);
        }
        emit BeneficiaryChanged(identity, beneficiary_, nonce);
    }

    /// @notice Payout address of `identity`; zero when it is not registered.
    function beneficiary(address identity) external view returns (address) {
        return identities[identity].beneficiary;
    }

    /// @notice Last used beneficiary-change nonce of `identity`.
    function beneficiaryNonce(address identity) external view returns (uint96) {
        return identities[identity].nonce;
    }

    /// @notice True once `identity` registered.
    function isRegistered(address identity) external view returns (bool) {
        return identities[identity].beneficiary != address(0);
    }

    /// @notice The consumer channel (top-up) address of identity with hermes,
    /// valid before registration.
    function channelAddress(address identity, address hermes) external view returns (address) {
        return _predict(channelImplementation, keccak256(abi.encodePacked(identity, hermes)));
    }

    // ---- equivalence helpers (for off-chain implementations and tests) ----

    /// @notice The promise digest of docs/protocol.md.
    function promiseDigest(uint256 chainId, bytes32 channelId, uint256 amount, uint256 fee, bytes32 hashlock)
        external
        pure
        returns (bytes32)
    {
        return Sig.promiseDigest(chainId, channelId, amount, fee, hashlock);
    }

    /// @notice The EIP-191 signer of a 32-byte digest; zero for a malformed signature.
    function recoverSigner(bytes32 digest, bytes calldata sig) external pure returns (address) {
        return Sig.recover(digest, sig);
    }

    // ---- EIP-1167 ----

    function _initCode(address impl) private pure returns (bytes memory) {
        return abi.encodePacked(
            hex"3d602d80600a3d3981f3363d3d373d3d3d363d73", impl, hex"5af43d82803e903d91602b57fd5bf3"
        );
    }

    function _clone(address impl, bytes32 salt, bool isHermes_) private returns (address addr) {
        bytes memory code = _initCode(impl);
        assembly {
            addr := create2(0, add(code, 0x20), mload(code), salt)
        }
        if (addr == address(0)) {
            address want = _predict(impl, salt);
            if (want.code.length != 0) {
                if (isHermes_) revert HermesExists(want);
                revert CreateFailed();
            }
            revert CreateFailed();
        }
    }

    function _predict(address impl, bytes32 salt) private view returns (address) {
        bytes32 h = keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(_initCode(impl))));
        return address(uint160(uint256(h)));
    }
}
