package api

import (
	"net/netip"
	"strings"
)

// Loopback reports whether host (a URL's or listen address's host part,
// without port or brackets) is "localhost" or a loopback IP. The API goes
// over plain HTTP only to such hosts (devnets); anywhere else it is HTTPS
// unless insecure HTTP is explicitly allowed.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
