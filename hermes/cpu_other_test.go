//go:build !unix

package hermes

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }

// processIO is not measured on this platform.
func processIO() (syscalls, bytes int64) { return 0, 0 }

// pidCPU is not measured on this platform.
func pidCPU(int) time.Duration { return 0 }
