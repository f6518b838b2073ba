package tunnel

import (
	"fmt"

	"golang.zx2c4.com/wireguard/device"
)

// DeviceCounter reads per-peer statistics from a wireguard-go device
// through its UAPI; both exit modes use it.
type DeviceCounter struct {
	Dev *device.Device
}

// PeerStats implements Counter.
func (d DeviceCounter) PeerStats(pub PublicKey) (PeerStats, bool) {
	all, err := d.All()
	if err != nil {
		return PeerStats{}, false
	}
	st, ok := all[pub]
	return st, ok
}

// All returns the counters of every peer.
func (d DeviceCounter) All() (map[PublicKey]PeerStats, error) {
	get, err := d.Dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("wireguard device stats: %w", err)
	}
	return ParseUAPIStats(get)
}
