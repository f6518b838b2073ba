// Package kernel is the kernel-mode half of the openmyst data plane: a
// wireguard-go device on a real TUN interface, with the host's routing and
// nftables doing the rest.
//
// On the provider side, NewExit brings up one device per service, assigns
// the pool's gateway address to the TUN interface, turns IP forwarding on,
// and loads a single nftables table (by default "inet openmyst") atomically
// with `nft -f`: source NAT (masquerade) of the tunnel pool out of every
// other interface, the exit policy of package tunnel rendered as counted
// drop rules in the forward path (default deny prefixes, the node's own
// addresses, operator allow/deny rules with ports, consumer-to-consumer
// traffic), an input filter that lets consumers reach the node itself only
// for DNS and ping on the gateway address, DNS on the gateway forwarded
// (DNAT) to upstream resolvers, TCP MSS clamping, and per-peer bandwidth
// limits (nftables limits; the bucket starts full, so a flow may burst one
// second of traffic). The table is deleted on Close and, if a crash left it
// behind, on the next start; the TUN interface disappears with the process,
// so an existing interface means another exit is running and NewExit
// refuses to start rather than touch its firewall. Forwarding sysctls it
// turns on are restored on Close; while IPv6 is forwarded, interfaces with
// accept_ra=1 get accept_ra=2 so the node keeps its IPv6 default route.
// Blocked counts dropped packets (a retried connection counts per retry).
// RemovePeer stops a consumer's packets at once; conntrack entries of its
// flows are left to expire.
//
// On the consumer side, Connect brings up a device with the provider as its
// only peer, routes everything through it the way wg-quick does (a fwmark
// on the device's own UDP socket plus a policy routing table, so the
// provider's endpoint keeps using the original route), optionally points
// resolv.conf at the tunnel's DNS, and installs a kill switch: an nftables
// table ("inet openmyst_killswitch") that rejects every outgoing packet that
// does not leave through the tunnel interface, except WireGuard's own UDP to
// the provider endpoint (or, when the provider peer is carried over an ICE
// connection, ClientConfig.Conn, UDP to the selected path's
// ClientConfig.Path instead), the ClientConfig.Direct destinations (the
// session's control connection to the provider; like the path, thrown out
// of the tunnel's routing table) and link-local housekeeping (DHCP, IPv6
// neighbour discovery), and drops every incoming packet but the tunnel's,
// replies (conntrack established/related) and that housekeeping.
// Client.AdmitChecks opens it, for one session's ICE connectivity checks,
// to the peer's candidates and the agent's sockets (marked SocketMark, by
// socket, never by port). The kill switch is installed before anything else and removed
// last, so nothing leaks while connecting, while the provider is gone, or
// while the peer is being replaced (Client.SetPeer). Client.Reconfigure
// moves a connected client to a whole new session in place (our key, the
// peer, tunnel addresses, MTU, routes, DNS, direct destinations), replacing
// the kill switch first in one nft transaction; Client.SetDirect changes
// only the direct destinations (a consumer opening the next provider's
// control address while the tunnel is down). Policy rules left by a
// crashed client are cleared on the next Connect; a crashed client's kill
// switch stays (fail closed) until the next Connect replaces it or
// RemoveKillSwitch removes it, and resolv.conf is not restored after a
// crash.
//
// Both sides enable what makes wireguard-go fast on Linux: the TUN is
// opened with IFF_VNET_HDR so wireguard-go uses TSO/GSO and GRO batches, and
// the default bind uses recvmmsg/sendmmsg with UDP GSO/GRO when the kernel
// has them.
//
// Everything here needs root (CAP_NET_ADMIN) and the iproute2 `ip` and
// nftables `nft` commands. The tests run inside network namespaces they
// create (package tunnel/netns) and skip with a reason when not root.
package kernel
