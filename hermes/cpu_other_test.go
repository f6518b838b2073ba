//go:build !unix

package hermes

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }

// processIO is not measured on this platform.
func processIO() (syscalls, bytes int64) { return 0, 0 }

// pidSample is what a process has used (see cpu_unix_test.go).
type pidSample struct {
	user, sys     time.Duration
	reads, writes int64
	written       int64
	peakRSS       int64
}

// samplePID is not measured on this platform.
func samplePID(int) pidSample { return pidSample{} }
