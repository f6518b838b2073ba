//go:build unix

package hermes

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used,
// for benchmarks on a shared machine: unlike wall time, it does not grow
// while other processes hold the cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
