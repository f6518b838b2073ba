// Package userspace runs openmyst tunnels without privileges: a
// wireguard-go device whose "TUN" is a gVisor netstack.
//
// On the provider (Exit) the netstack runs promiscuous with spoofing, so it
// terminates every TCP and UDP flow a consumer sends, whatever its
// destination; gVisor's TCP and UDP forwarders hand each new flow to the
// exit, which checks the tunnel.ExitPolicy, dials the destination from an
// ordinary host socket and splices bytes both ways (optionally through a
// per-peer token bucket). DNS sent to the provider's tunnel address is
// forwarded to the host resolver.
//
// On the consumer (Client) the netstack holds the consumer's tunnel
// addresses; local SOCKS5 and HTTP CONNECT proxies (package tunnel/proxy)
// dial through it, and names are resolved by the provider's DNS through
// the tunnel.
package userspace
