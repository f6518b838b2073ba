// Package proxy serves a consumer's local proxies on loopback: SOCKS5
// (RFC 1928, no authentication, CONNECT and UDP ASSOCIATE) and HTTP
// (CONNECT tunnels and plain absolute-URI requests). Every outbound
// connection goes through a Network, which the userspace client backs with
// its WireGuard netstack; the proxies themselves know nothing about the
// tunnel.
package proxy
