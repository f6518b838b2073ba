// Package transactor is the gasless relay of openmyst: an HTTP service that
// submits the Registry's and Hermes' signed calls (identity registration,
// beneficiary change, provider promise settlement) from its own funded key,
// paying the gas and receiving the `fee` each call carries, so an identity
// holding neither ETH nor MYST can register and later settle. It also
// redeems sponsor-signed referral vouchers (free registration plus a
// starter top-up moved from the sponsor's allowance).
//
// Fees are quoted (GET /v1/fees) in a quote the transactor signs with an
// expiry; every call must carry an unexpired quote of this transactor and a
// fee no lower than the quoted one. Before paying gas the service checks
// what the chain would check (signature, registration, nonce, channel
// balance, chain.ProviderPayoutOf for settlements) and simulates the call
// (gas estimation runs it with eth_call semantics); a call that could not
// pay its fee is refused. Requests are rate-limited per source address and
// per identity (package ratelimit); redemptions are recorded in SQLite
// before the chain is touched, so a voucher is honoured once across
// restarts. See docs/transactor.md.
package transactor
