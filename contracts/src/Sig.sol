// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Sig: EIP-191 signature recovery and the openmyst message digests.
/// @notice Every digest here is specified byte for byte in docs/protocol.md;
/// the Go package payments computes the promise digest and package chain
/// the others, and the differential tests in chain/ check both.
library Sig {
    /// @dev Half the secp256k1 curve order: signatures with a larger s are
    /// malleable copies and are rejected.
    uint256 internal constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice The signature is not 65 bytes, has v outside {27, 28}, has a
    /// high s, has r or s zero or not below N, has an r that is no curve
    /// point's x (the ecrecover precompile returns nothing for these), or
    /// does not recover to the expected signer. Go's identity.Recover
    /// applies exactly these rules (chain/sigparity_test.go).
    error BadSignature();

    /// @notice keccak256(chainId || channelId || amount || fee || hashlock).
    function promiseDigest(uint256 chainId, bytes32 channelId, uint256 amount, uint256 fee, bytes32 hashlock)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(chainId, channelId, amount, fee, hashlock));
    }

    /// @notice Recovers the EIP-191 personal-message signer of a 32-byte digest.
    /// Returns address(0) for a malformed signature.
    function recover(bytes32 digest, bytes calldata sig) internal pure returns (address) {
        if (sig.length != 65) return address(0);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := calldataload(sig.offset)
            s := calldataload(add(sig.offset, 32))
            v := byte(0, calldataload(add(sig.offset, 64)))
        }
        if (v != 27 && v != 28) return address(0);
        if (uint256(s) > HALF_N) return address(0);
        bytes32 h = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest));
        return ecrecover(h, v, r, s);
    }

    /// @notice Reverts with BadSignature unless sig over digest was made by signer.
    function check(bytes32 digest, bytes calldata sig, address signer) internal pure {
        address got = recover(digest, sig);
        if (got == address(0) || got != signer) revert BadSignature();
    }
}
