// Package buildinfo reports the version of the running openmyst binary.
package buildinfo

import "runtime/debug"

// Version is set at build time with -ldflags "-X .../buildinfo.Version=v1.2.3".
var Version = "dev"

// String returns the version plus the VCS revision when the binary has one.
func String() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}
